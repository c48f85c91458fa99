// The request pool (postgres.js, as `authenticator`) and the one transaction every request runs in:
//   BEGIN ISOLATION LEVEL … READ ONLY|READ WRITE; setup; main [; plan]; COMMIT or ROLLBACK
// three round trips (setup, main and plan go out together), rolled back when the result breaks what the client
// asked for (a .single() that matched 2 rows, max-affected).
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

// What the server answers a connection that cannot be made: the database does not exist (dropped by db:reset,
// not created again yet), the password is refused, the server is starting or shutting down.
const STARTUP_SQLSTATES = new Set(["3D000", "28P01", "28000", "57P03"]);

/** A connection failure rather than an error of the request's SQL: PostgREST's 503 PGRST000. */
export function isConnectionError(e: unknown): boolean {
  const { code, severity } = (e ?? {}) as { code?: string; severity?: string };
  if (typeof code !== "string") return false;
  if (severity) return severity === "FATAL" && STARTUP_SQLSTATES.has(code);
  return CONNECTION_CODES.has(code) || code.startsWith("E");
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

class Abandoned extends Error {}

export class Database {
  #sql: postgres.Sql;

  constructor(
    private readonly url: string,
    private readonly opts: { poolSize: number; acquisitionTimeoutMs: number },
  ) {
    this.#sql = this.#pool();
  }

  #pool(): postgres.Sql {
    return postgres(this.url, {
      max: this.opts.poolSize,
      prepare: true,
      types: PASS_THROUGH,
      idle_timeout: 60,
      connect_timeout: 5,
      onnotice: () => {},
      connection: { application_name: "rest stand-in (PostgREST)" },
    });
  }

  /** The pool in use now (recycle() replaces it). */
  get sql(): postgres.Sql {
    return this.#sql;
  }

  /**
   * A new pool for new requests; the old one ends once its in-flight transactions are done. After the database was
   * dropped and recreated (npm run db:reset, which is `supabase db reset` restarting the services on the platform's
   * CLI) every pooled connection is dead: without this, the next requests would each meet one and answer 503.
   */
  recycle(): void {
    const old = this.#sql;
    this.#sql = this.#pool();
    old.end({ timeout: 5 }).catch(() => {});
  }

  /**
   * Runs setup, main (and extra) in one transaction, pipelined after BEGIN; `verdict` may roll it back after
   * seeing the main statement's rows. (postgres.js's begin(), not reserve(): begin() notices a connection that
   * closes under it — a backend terminated, a database dropped — and fails the request instead of hanging.)
   */
  async transaction(
    tx: TxOptions,
    setup: Statement,
    main: Statement,
    extra: Statement | null,
    verdict: Verdict | null,
  ): Promise<TxResult> {
    const iso = tx.isolation && ISOLATION.has(tx.isolation) ? tx.isolation : "read committed";
    if (LOG_ALL_SQL) log("info", "statement", { main: main.text, params: main.params });
    let abandoned = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        abandoned = true;
        reject(acquisitionTimeout());
      }, this.opts.acquisitionTimeoutMs);
    });
    const work = this.sql.begin(
      `isolation level ${iso} ${tx.readOnly ? "read only" : "read write"}`,
      async (t) => {
        clearTimeout(timer);
        if (abandoned) throw new Abandoned();
        // Prepared (named) statements: after a statement text's first run there is no Describe round trip, so the
        // statements go out pipelined, as PostgREST's db-prepared-statements makes them prepared.
        const run = (s: Statement) =>
          t.unsafe(s.text, s.params as postgres.ParameterOrJSON<never>[], { prepare: true }) as Promise<
            Row[]
          >;
        const settled = await Promise.allSettled([run(setup), run(main), ...(extra ? [run(extra)] : [])]);
        const failed = settled.find((x): x is PromiseRejectedResult => x.status === "rejected");
        if (failed) {
          if (LOG_SQL) {
            log("info", "statement failed", {
              error: String(failed.reason),
              main: main.text,
              params: main.params,
            });
          }
          throw failed.reason;
        }
        const values = settled.map((x) => (x as PromiseFulfilledResult<Row[]>).value);
        const problem = verdict?.(values[1]) ?? null;
        if (problem) throw problem; // rolls back
        return { main: values[1], extra: extra ? values[2] : null };
      },
    );
    try {
      return await Promise.race([work, timeout]);
    } catch (e) {
      if (e instanceof ApiError) throw e;
      if (isConnectionError(e)) throw connectionError(String((e as Error).message ?? e));
      throw e;
    } finally {
      clearTimeout(timer);
      work.catch(() => {}); // an abandoned transaction settles later; nothing waits for it
    }
  }

  async end(): Promise<void> {
    await this.#sql.end({ timeout: 1 });
  }
}
