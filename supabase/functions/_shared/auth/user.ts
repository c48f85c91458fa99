// Who is calling: the token (token.ts), verified as a user token (verify.ts), and the user loaded from
// public.users with one query, `select id, email, plan from public.users where id = $1`; no row → 401.
// The database being down is a 503, not a 401.
import type { Database } from "../database.types.ts";
import { HttpError } from "../http/errors.ts";
import { db, type Sql } from "../platform/db.ts";
import { describeError, type Logger } from "../platform/log.ts";
import { bearerOrApiKey, unauthorized } from "./token.ts";
import { type UserClaims, verifyUserToken } from "./verify.ts";

export type Plan = "free" | "pro" | "max";

export type AuthUser = {
  readonly id: string;
  readonly email: string | null;
  readonly plan: Plan;
  readonly claims: UserClaims;
};

export type AuthOptions = {
  /** Headers to read the token from, in priority order (first present wins). Default: authorization. */
  headers?: readonly string[];
  /** The database client for the user lookup. Default: the shared `db()`. */
  sql?: Sql;
  /** Where dependency failures (JWKS, database) are logged. */
  log?: Logger;
};

/** The public.users columns the lookup reads; `plan` (text) narrowed to the plans its check constraint allows. */
type UserRow = Pick<Database["public"]["Tables"]["users"]["Row"], "id" | "email"> & { plan: Plan };

/** The calling user: token from `options.headers`, verified, and present in public.users. */
export async function authenticate(req: Request, options: AuthOptions = {}): Promise<AuthUser> {
  const token = bearerOrApiKey(req, options.headers);
  const claims = await verifyUserToken(token, options.log);
  let rows: UserRow[];
  try {
    const sql = options.sql ?? db();
    rows = await sql<UserRow[]>`
      select id, email, plan from public.users where id = ${claims.sub}`;
  } catch (e) {
    if (e instanceof HttpError) throw e;
    options.log?.error("auth user lookup failed", { error: describeError(e) });
    throw new HttpError("service_unavailable", "Authentication is temporarily unavailable");
  }
  const row = rows[0];
  if (!row) throw unauthorized("User not found");
  return { id: row.id, email: row.email, plan: row.plan, claims };
}
