// Per-IP rate limits as Supabase Auth counts them: a token bucket per client IP, refilled at `limit` requests
// per 5 minutes. (Auth's buckets hold a burst of 30 whatever the limit; these hold `limit`, so a configured limit
// of N allows N requests at once, the number config.toml's comments describe.) In memory, one process.
const WINDOW_MS = 5 * 60 * 1000;

type Bucket = { tokens: number; at: number };

export class RateLimiter {
  readonly #buckets = new Map<string, Bucket>();
  readonly #refillPerMs: number;

  constructor(readonly limit: number, private readonly now: () => number = Date.now) {
    this.#refillPerMs = limit / WINDOW_MS;
  }

  /** Counts one request from `ip`; false when its bucket is empty (answer 429). */
  take(ip: string): boolean {
    const now = this.now();
    const bucket = this.#buckets.get(ip) ?? { tokens: this.limit, at: now };
    bucket.tokens = Math.min(this.limit, bucket.tokens + (now - bucket.at) * this.#refillPerMs);
    bucket.at = now;
    this.#buckets.set(ip, bucket);
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    this.#prune(now);
    return true;
  }

  /** Forgets buckets that have refilled completely (they are the same as no bucket). */
  #prune(now: number): void {
    if (this.#buckets.size < 10_000) return;
    for (const [ip, bucket] of this.#buckets) {
      if (bucket.tokens + (now - bucket.at) * this.#refillPerMs >= this.limit) this.#buckets.delete(ip);
    }
  }
}
