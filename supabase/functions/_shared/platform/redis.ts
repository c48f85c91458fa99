// Upstash Redis over REST, when UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN are set.
// (The local stack sets them to its own Upstash-compatible endpoint in front of Redis.)
import { Redis } from "npm:@upstash/redis@1.39.0";
import { type CheckResult } from "./db.ts";
import { timed } from "./deadline.ts";
import { env } from "./env.ts";

let client: Redis | null | undefined;

/** The shared client, or null when Redis is not configured. */
export function redis(): Redis | null {
  if (client === undefined) {
    const url = env.string("UPSTASH_REDIS_REST_URL");
    const token = env.string("UPSTASH_REDIS_REST_TOKEN");
    client = url && token ? new Redis({ url, token, retry: { retries: 1, backoff: () => 50 } }) : null;
  }
  return client;
}

export async function checkRedis(timeoutMs = 2000): Promise<CheckResult> {
  const r = redis();
  if (!r) return { status: "not_configured" };
  try {
    return { status: "ok", latency_ms: await timed(() => r.ping(), timeoutMs, "redis") };
  } catch {
    return { status: "down" };
  }
}
