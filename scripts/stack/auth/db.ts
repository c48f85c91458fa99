// The Auth stand-in's database connection: as supabase_auth_admin, the role Supabase Auth connects as (it owns
// the auth schema; its password is set by schema.sql). Its URL is the superuser DB_URL with that user instead.
import postgres from "npm:postgres@3.4.9";

/** A pool or a transaction: what the store's queries run on. */
export type Db = postgres.ISql;
/** The pool (it can begin transactions). */
export type Pool = postgres.Sql;

export const AUTH_DB_ROLE = "supabase_auth_admin";

/** DB_URL with the auth role's name (same host, database and password, as on a local stack). */
export function authDbUrl(superuserUrl: string): string {
  const url = new URL(superuserUrl);
  url.username = AUTH_DB_ROLE;
  return url.toString();
}

export function connect(superuserUrl: string, max = 10): Pool {
  return postgres(authDbUrl(superuserUrl), {
    max,
    onnotice: () => {},
    connection: { application_name: "auth" },
  });
}
