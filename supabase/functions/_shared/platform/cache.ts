// A JSON answer cached in Redis (Upstash) that never makes a request fail: Redis is an accelerator, Postgres the
// source. `cachedJson(key, load)` returns the stored body on a hit; on a miss it runs `load` and stores what it
// gave for as long as it says (and under the key it says, when the loaded data knows its version better); when Redis is not configured, errors or does not answer within CACHE_TIMEOUT_MS (default 150 ms),
// it runs `load` and says "bypass" — and leaves Redis alone for CACHE_RETRY_AFTER_MS (default 5 s) so a slow Redis
// does not add its timeout to every request. Each entry carries its strong ETag (a SHA-256 of the body).
import type { Logger } from "./log.ts";
import { withTimeout } from "./deadline.ts";
import { env } from "./env.ts";
import { redis } from "./redis.ts";
import { sha256Hex } from "./hash.ts";

export type CacheOutcome = "hit" | "miss" | "bypass";

export type CachedJson = { body: string; etag: string; cache: CacheOutcome };

type Entry = { body: string; etag: string };

let skipUntil = 0;

/** A strong ETag for a body: the quoted base64url of the first 16 bytes of its SHA-256. */
export async function etagOf(body: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(body)));
  const b64 = btoa(String.fromCharCode(...digest.subarray(0, 16)));
  return `"${b64.replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "")}"`;
}

/** A key part for free text (a search): its SHA-256 in hex, so any input makes a short, safe key. */
export function keyHash(text: string): Promise<string> {
  return sha256Hex(text, 16);
}

function isEntry(v: unknown): v is Entry {
  const e = v as Entry | null;
  return typeof e === "object" && e !== null && typeof e.body === "string" && typeof e.etag === "string";
}

export type Loaded = {
  body: string;
  /** How long the entry lives in Redis. */
  ttlSeconds: number;
  /** The key to store it under, when not the one looked up (the data read says which version it is). */
  storeAs?: string;
};

/** The body under `key`, from Redis or from `load`. */
export async function cachedJson(key: string, load: () => Promise<Loaded>, log: Logger): Promise<CachedJson> {
  const client = redis();
  const timeoutMs = env.integer("CACHE_TIMEOUT_MS", { min: 1, max: 10_000, default: 150 });
  const retryAfterMs = env.integer("CACHE_RETRY_AFTER_MS", { min: 0, max: 600_000, default: 5_000 });
  let usable = client !== null && Date.now() >= skipUntil;
  const failed = (what: string, e: unknown) => {
    usable = false;
    skipUntil = Date.now() + retryAfterMs;
    log.warn("cache unavailable, serving from the database", {
      op: what,
      error: e instanceof Error ? e.name : "unknown",
    });
  };

  if (usable) {
    try {
      const hit = await withTimeout(client!.get<Entry>(key), timeoutMs, "cache read");
      if (isEntry(hit)) return { body: hit.body, etag: hit.etag, cache: "hit" };
    } catch (e) {
      failed("get", e);
    }
  }

  const loaded = await load();
  const etag = await etagOf(loaded.body);
  if (usable) {
    try {
      const entry: Entry = { body: loaded.body, etag };
      await withTimeout(
        client!.set(loaded.storeAs ?? key, entry, { ex: loaded.ttlSeconds }),
        timeoutMs,
        "cache write",
      );
    } catch (e) {
      failed("set", e);
    }
  }
  return { body: loaded.body, etag, cache: usable ? "miss" : "bypass" };
}
