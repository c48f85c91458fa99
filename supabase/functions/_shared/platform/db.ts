// The function's own connection to Postgres (SUPABASE_DB_URL), never the anon key. Prepared statements
// are used on direct and session-mode connections and switched off for Supavisor's transaction mode
// (port 6543), which cannot keep them; DB_PREPARE=true|false overrides. DB_POOL_MAX sizes the pool (default 5).
import postgres from "npm:postgres@3.4.9";
import { timed } from "./deadline.ts";
import { env } from "./env.ts";

export type Sql = postgres.Sql;

let client: Sql | undefined;

export function usePreparedStatements(url: string, setting = env.boolean("DB_PREPARE")): boolean {
  if (setting !== undefined) return setting;
  try {
    return new URL(url).port !== "6543";
  } catch {
    return false;
  }
}

export function db(): Sql {
  const url = env.required("SUPABASE_DB_URL", "The database");
  client ??= postgres(url, {
    prepare: usePreparedStatements(url),
    max: env.integer("DB_POOL_MAX", { min: 1, default: 5 }),
    idle_timeout: 20,
    connect_timeout: 5,
    connection: { application_name: "edge-functions" },
    onnotice: () => {},
  });
  return client;
}

export type CheckResult = { status: "ok" | "down" | "not_configured"; latency_ms?: number };

export async function checkDatabase(timeoutMs = 2000): Promise<CheckResult> {
  try {
    return { status: "ok", latency_ms: await timed(() => db()`select 1`, timeoutMs, "database") };
  } catch {
    return { status: "down" };
  }
}
