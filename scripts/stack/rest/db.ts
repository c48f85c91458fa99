// The request pool (postgres.js, as `authenticator`) and the one transaction every request runs in:
//   BEGIN ISOLATION LEVEL … READ ONLY|READ WRITE; setup; main [; plan]; COMMIT or ROLLBACK
// pipelined on one reserved connection: a read is one round trip (its COMMIT goes with it); a write is two, as
// it may have to roll back after looking at the result (a .single() that matched 2 rows, max-affected).
import postgres from "npm:postgres@3.4.9";
import { acquisitionTimeout, ApiError, connectionError } from "./errors.ts";
import { log } from "./log.ts";
import type { Statement } from "./statements.ts";

/** REST_LOG_SQL=1: log the SQL (and parameters) of failing statements, for debugging the stand-in itself. */
const LOG_SQL = Deno.env.get("REST_LOG_SQL") === "1" || Deno.env.get("REST_LOG_SQL") === "all";
const LOG_ALL_SQL = Deno.env.get("REST_LOG_SQL") === "all";

export type Row = Record<string, unknown>;

export type TxOptions = {
  readOnly: boolean;
  /** From the role's or the function's default_transaction_isolation; read committed otherwise. */
  isolation: string | null;
};

const ISOLATION = new Set(["read committed", "repeatable read", "serializable"]);

/** Decides, from the main statement's rows, whether the transaction must roll back (and with what error). */
export type Verdict = (rows: Row[]) => ApiError | null;

export type TxResult = { main: Row[]; extra: Row[] | null };

const CONNECTION_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ENOTFOUND",
  "EPIPE",
  "CONNECT_TIMEOUT",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
]);

/** A connection failure (not an SQL error): PostgREST's 503 PGRST000. */
export function isConnectionError(e: unknown): boolean {
  const code = (e as { code?: string })?.code;
  return typeof code === "string" && (CONNECTION_CODES.has(code) || code.startsWith("E")) &&
    !(e as { severity?: string }).severity;
}

/**
 * Every parameter is request text, to be read by PostgreSQL's input function for the type it infers (as
 * PostgREST binds "unknown" literals). postgres.js would re-encode a value for the type the server reports
 * (a JSON string again for json, 't'/'f' for booleans, an ISO date): these types pass text through unchanged.
 */
const PASS_THROUGH: Record<string, postgres.PostgresType> = {
  json: {
    to: 114,
    from: [114, 3802],
    serialize: (x: unknown) => String(x),
    parse: (x: string) => JSON.parse(x),
  },
  boolean: { to: 16, from: [16], serialize: (x: unknown) => String(x), parse: (x: string) => x === "t" },
  date: { to: 1184, from: [1082, 1114, 1184], serialize: (x: unknown) => String(x), parse: (x: string) => x },
  bytea: { to: 17, from: [17], serialize: (x: unknown) => String(x), parse: (x: string) => x },
};

export class Database {
  readonly sql: postgres.Sql;

  constructor(url: string, private readonly opts: { poolSize: number; acquisitionTimeoutMs: number }) {
    this.sql = postgres(url, {
      max: opts.poolSize,
      prepare: true,
      types: PASS_THROUGH,
      idle_timeout: 60,
      connect_timeout: 5,
      onnotice: () => {},
      connection: { application_name: "rest stand-in (PostgREST)" },
    });
  }

  private async reserve(): Promise<postgres.ReservedSql> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const pending = this.sql.reserve();
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(acquisitionTimeout()), this.opts.acquisitionTimeoutMs);
    });
    try {
      return await Promise.race([pending, timeout]);
    } catch (e) {
      pending.then((c) => c.release(), () => {});
      if (e instanceof ApiError) throw e;
      throw connectionError(String((e as Error).message ?? e));
    } finally {
      clearTimeout(timer);
    }
  }

  /** Runs setup, main (and extra) in one transaction; `verdict` null: commit pipelined with the rest. */
  async transaction(
    tx: TxOptions,
    setup: Statement,
    main: Statement,
    extra: Statement | null,
    verdict: Verdict | null,
  ): Promise<TxResult> {
    const iso = tx.isolation && ISOLATION.has(tx.isolation) ? tx.isolation : "read committed";
    const conn = await this.reserve();
    if (LOG_ALL_SQL) log("info", "statement", { main: main.text, params: main.params });
    try {
      // Prepared (named) statements: after the first run of a statement text, no Describe round trip and
      // the whole transaction goes out pipelined, as PostgREST's db-prepared-statements does.
      const run = (s: Statement) =>
        conn.unsafe(s.text, s.params as postgres.ParameterOrJSON<never>[], { prepare: true });
      const queries: Promise<unknown>[] = [
        conn.unsafe(`begin isolation level ${iso} ${tx.readOnly ? "read only" : "read write"}`),
        run(setup),
        run(main),
      ];
      if (extra) queries.push(run(extra));
      if (verdict === null) queries.push(conn.unsafe("commit"));
      const settled = await Promise.allSettled(queries);
      const failed = settled.find((s): s is PromiseRejectedResult => s.status === "rejected");
      if (failed) {
        if (verdict !== null) await conn.unsafe("rollback").catch(() => {});
        if (LOG_SQL) {
          log("info", "statement failed", {
            error: String(failed.reason),
            main: main.text,
            params: main.params,
          });
        }
        throw failed.reason;
      }
      const values = settled.map((s) => (s as PromiseFulfilledResult<unknown>).value);
      const mainRows = values[2] as Row[];
      const extraRows = extra ? values[3] as Row[] : null;
      if (verdict !== null) {
        const problem = verdict(mainRows);
        await conn.unsafe(problem ? "rollback" : "commit");
        if (problem) throw problem;
      }
      return { main: mainRows, extra: extraRows };
    } finally {
      conn.release();
    }
  }

  async end(): Promise<void> {
    await this.sql.end({ timeout: 1 });
  }
}
