// Deadlines for calls to dependencies: a call that does not settle in time rejects with a Timeout.

export class Timeout extends Error {
  override name = "Timeout";
}

/** `work`, or a Timeout rejection after `ms` milliseconds, whichever comes first. */
export async function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Timeout(`${what} timed out after ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs `fn` within `ms`; resolves to the elapsed milliseconds (one decimal), or rejects on failure/timeout. */
export async function timed(fn: () => Promise<unknown>, ms: number, what = "check"): Promise<number> {
  const started = performance.now();
  await withTimeout(fn(), ms, what);
  return Math.round((performance.now() - started) * 10) / 10;
}
