// The function's own connection to Postgres (SUPABASE_DB_URL), never the anon key. On a hosted project
// point SUPABASE_DB_URL at the pooler in transaction mode; prepared statements are off for that reason.
import postgres from "npm:postgres@3.4.9";
import { requiredEnv } from "./env.ts";

export type Sql = postgres.Sql;

let client: Sql | undefined;

export function db(): Sql {
  client ??= postgres(requiredEnv("SUPABASE_DB_URL", "The database"), {
    prepare: false,
    max: Number(Deno.env.get("DB_POOL_MAX") ?? 5),
    idle_timeout: 20,
    connect_timeout: 5,
    connection: { application_name: "edge-functions" },
    onnotice: () => {},
  });
  return client;
}

export type CheckResult = { status: "ok" | "down" | "not_configured"; latency_ms?: number };

/** Runs `fn` with a deadline; resolves to the elapsed milliseconds, or throws on failure/timeout. */
export async function timed(fn: () => Promise<unknown>, timeoutMs: number): Promise<number> {
  const started = performance.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      fn(),
      new Promise((_, reject) => timer = setTimeout(() => reject(new Error("timeout")), timeoutMs)),
    ]);
  } finally {
    clearTimeout(timer);
  }
  return Math.round((performance.now() - started) * 10) / 10;
}

export async function checkDatabase(timeoutMs = 2000): Promise<CheckResult> {
  try {
    return { status: "ok", latency_ms: await timed(() => db()`select 1`, timeoutMs) };
  } catch {
    return { status: "down" };
  }
}
