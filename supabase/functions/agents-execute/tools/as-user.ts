// Database reads as a signed-in user, the way PostgREST runs a request: one transaction that sets
// `role authenticated` and request.jwt.claims (sub = the user, role authenticated) locally, so RLS and
// auth.uid() decide what is visible, never a filter in TypeScript over a privileged read. The transaction's
// statement_timeout bounds each of its statements.
import type postgres from "npm:postgres@3.4.9";
import { db, type Sql } from "../../_shared/platform/db.ts";

export type UserTx = postgres.TransactionSql;

export async function asUser<T>(
  userId: string,
  options: { statementTimeoutMs: number },
  read: (tx: UserTx) => Promise<T>,
  sql: Sql = db(),
): Promise<T> {
  const claims = JSON.stringify({ sub: userId, role: "authenticated", aud: "authenticated" });
  return await sql.begin(async (tx) => {
    await tx`set local role authenticated`;
    await tx`select set_config('request.jwt.claims', ${claims}, true),
                    set_config('statement_timeout', ${String(options.statementTimeoutMs)}, true)`;
    return await read(tx);
  }) as T;
}
