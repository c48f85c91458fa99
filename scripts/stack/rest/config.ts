// The Data API stand-in's settings: where it listens and connects (env), and what PostgREST reads from
// supabase/config.toml [api] on a hosted project (exposed schemas, extra search path, max rows). The names follow
// PostgREST's settings (db-schemas, db-extra-search-path, db-max-rows, db-anon-role, db-pool, …).
import { parse as parseToml } from "npm:smol-toml@1.4.2";
import { fileURLToPath } from "node:url";

export type RestConfig = {
  port: number;
  /** The superuser URL the stack hands every service (DB_URL). */
  adminUrl: string;
  /** PostgREST's db-uri on a hosted project: the same database as role `authenticator` (login, noinherit). */
  authenticatorUrl: string;
  keysFile: string;
  /** db-schemas (`[api] schemas`): the first is the default; Accept-Profile / Content-Profile pick another. */
  schemas: string[];
  /** db-extra-search-path (`[api] extra_search_path`): after the request's schema in its search_path. */
  extraSearchPath: string[];
  /** db-max-rows (`[api] max_rows`): the most rows a read or a call returns at each level (null: no limit). */
  maxRows: number | null;
  /** db-anon-role: the role of a request without a token (and of a token without a role claim). */
  anonRole: string;
  /** db-pool: connections in the request pool (the platform's default is 10). */
  poolSize: number;
  /** db-pool-acquisition-timeout: how long a request waits for a connection before 504 PGRST003. */
  poolAcquisitionTimeoutMs: number;
  /** db-hoisted-tx-settings: the function settings applied to an RPC's transaction. */
  hoistedTxSettings: string[];
};

const CONFIG_TOML = fileURLToPath(new URL("../../../supabase/config.toml", import.meta.url));
const AUTHENTICATOR_PASSWORD = "postgres"; // scripts/stack/bootstrap.sql

type ApiSection = { schemas?: string[]; extra_search_path?: string[]; max_rows?: number };

function required(name: string): string {
  const value = Deno.env.get(name);
  if (!value) throw new Error(`${name} is required`);
  return value;
}

/** The database URL for `authenticator`, derived from the superuser URL (same host, port and database). */
export function authenticatorUrlFrom(adminUrl: string, password = AUTHENTICATOR_PASSWORD): string {
  const url = new URL(adminUrl);
  url.username = "authenticator";
  url.password = encodeURIComponent(password);
  return url.toString();
}

export async function readApiSection(file = CONFIG_TOML): Promise<ApiSection> {
  const toml = parseToml(await Deno.readTextFile(file)) as { api?: ApiSection };
  return toml.api ?? {};
}

export async function loadConfig(): Promise<RestConfig> {
  const api = await readApiSection();
  const adminUrl = required("DB_URL");
  return {
    port: Number(required("API_PORT")),
    adminUrl,
    authenticatorUrl: authenticatorUrlFrom(adminUrl),
    keysFile: required("KEYS_FILE"),
    schemas: api.schemas?.length ? api.schemas : ["public", "graphql_public"],
    extraSearchPath: api.extra_search_path ?? ["public", "extensions"],
    maxRows: typeof api.max_rows === "number" && api.max_rows > 0 ? api.max_rows : null,
    anonRole: "anon",
    poolSize: Number(Deno.env.get("REST_DB_POOL") ?? 10),
    poolAcquisitionTimeoutMs: 10_000,
    hoistedTxSettings: [
      "statement_timeout",
      "plan_filter.statement_cost_limit",
      "default_transaction_isolation",
    ],
  };
}
