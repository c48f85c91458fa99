// Latency percentiles of a function run many times at a concurrency.

/** The q-quantile (0..1) of sorted values, nearest rank: the smallest value with at least q of them at or below. */
export function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil(q * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

export type Stats = { runs: number; p50: number; p95: number; p99: number; perSecond: number };

/**
 * Runs `run` `runs` times from `concurrency` workers after a warm-up of 20 per worker (every pooled connection
 * open), timing each. `maxSeconds`: stop early once this much time has passed (at least 100 runs), for a slow
 * design whose 1 000 runs would blow the benchmark's time; the runs made are in the result.
 */
export async function measure(
  run: (n: number) => Promise<void>,
  opts: { runs: number; concurrency: number; maxSeconds?: number },
): Promise<Stats> {
  let next = 0;
  const warmUp = 20 * opts.concurrency;
  await Promise.all(Array.from({ length: opts.concurrency }, async () => {
    while (next < warmUp) await run(next++);
  }));
  const latencies: number[] = [];
  const started = performance.now();
  const deadline = opts.maxSeconds ? started + opts.maxSeconds * 1000 : Infinity;
  let issued = 0;
  await Promise.all(Array.from({ length: opts.concurrency }, async () => {
    while (issued < opts.runs && (issued < 100 || performance.now() < deadline)) {
      issued++;
      const t = performance.now();
      await run(next++);
      latencies.push(performance.now() - t);
    }
  }));
  const elapsed = performance.now() - started;
  latencies.sort((a, b) => a - b);
  return {
    runs: latencies.length,
    p50: percentile(latencies, 0.5),
    p95: percentile(latencies, 0.95),
    p99: percentile(latencies, 0.99),
    perSecond: (latencies.length / elapsed) * 1000,
  };
}
