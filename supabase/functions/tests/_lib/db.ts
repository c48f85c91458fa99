// Direct database access for tests (as postgres, like the functions' own connection) and test users.
import postgres from "npm:postgres@3.4.9";
import { stack } from "./stack.ts";

export type Sql = postgres.Sql;

/** A small pool for one test file; close it with `await sql.end()`. */
export function testSql(max = 10): Sql {
  return postgres(stack.dbUrl, { max, prepare: false, onnotice: () => {} });
}

export type TestUser = { id: string; email: string };

/** Signs a user up the way Auth does (insert into auth.users); the triggers create the rest. */
export async function createTestUser(
  sql: Sql,
  fields: { id?: string; customer?: string } = {},
): Promise<TestUser> {
  const id = fields.id ?? crypto.randomUUID();
  const email = `test-${id.slice(0, 8)}@example.com`;
  await sql`insert into auth.users (id, aud, role, email, email_confirmed_at, raw_user_meta_data)
            values (${id}, 'authenticated', 'authenticated', ${email}, now(), '{}')`;
  if (fields.customer) {
    await sql`update public.users set stripe_customer_id = ${fields.customer} where id = ${id}`;
  }
  return { id, email };
}

export async function deleteTestUsers(sql: Sql, users: TestUser[]): Promise<void> {
  if (users.length) await sql`delete from auth.users where id = any(${users.map((u) => u.id)}::uuid[])`;
}
