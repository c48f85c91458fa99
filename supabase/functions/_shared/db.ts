// The function's own connection to Postgres (SUPABASE_DB_URL), never the anon key. Prepared statements
// are used on direct and session-mode connections and switched off for Supavisor's transaction mode
// (port 6543), which cannot keep them; DB_PREPARE=true|false overrides.
import postgres from "npm:postgres@3.4.9";
import { requiredEnv } from "./env.ts";

export type Sql = postgres.Sql;

let client: Sql | undefined;

export function usePreparedStatements(url: string, setting = Deno.env.get("DB_PREPARE")): boolean {
  if (setting === "true" || setting === "false") return setting === "true";
  try {
    return new URL(url).port !== "6543";
  } catch {
    return false;
  }
}

export function db(): Sql {
  const url = requiredEnv("SUPABASE_DB_URL", "The database");
  client ??= postgres(url, {
    prepare: usePreparedStatements(url),
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
