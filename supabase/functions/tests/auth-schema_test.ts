// The auth schema's tables the Auth stand-in keeps (scripts/stack/auth/schema.sql): Auth's own columns and
// constraints, owned by supabase_auth_admin, which is also the role the service connects as; the file applies
// again without error (npm start runs it every time).
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import postgres from "npm:postgres@3.4.9";
import { applyMigrations, psql, scratchDatabase } from "../../../scripts/db/scratch.ts";
import { authScenario, startAuthInstance } from "./_lib/auth.ts";
import { stack } from "./_lib/stack.ts";

const SCHEMA_SQL = fileURLToPath(new URL("../../../scripts/stack/auth/schema.sql", import.meta.url));

Deno.test("Auth's tables have the columns its migrations give them and belong to supabase_auth_admin", async () => {
  await authScenario(async ({ sql }) => {
    const expected: Record<string, string[]> = {
      sessions: [
        "id",
        "user_id",
        "created_at",
        "updated_at",
        "factor_id",
        "aal",
        "not_after",
        "refreshed_at",
        "user_agent",
        "ip",
        "tag",
      ],
      refresh_tokens: [
        "instance_id",
        "id",
        "token",
        "user_id",
        "revoked",
        "created_at",
        "updated_at",
        "parent",
        "session_id",
      ],
      identities: [
        "provider_id",
        "user_id",
        "identity_data",
        "provider",
        "last_sign_in_at",
        "created_at",
        "updated_at",
        "email",
        "id",
      ],
      mfa_amr_claims: ["session_id", "created_at", "updated_at", "authentication_method", "id"],
    };
    for (const [table, columns] of Object.entries(expected)) {
      const rows = await sql<{ column_name: string }[]>`
        select column_name from information_schema.columns where table_schema = 'auth' and table_name = ${table}
         order by ordinal_position`;
      assert.deepEqual(rows.map((r) => r.column_name), columns, table);
      const [{ owner }] =
        await sql`select tableowner as owner from pg_tables where schemaname = 'auth' and tablename = ${table}`;
      assert.equal(owner, "supabase_auth_admin", table);
    }
    const cascades = await sql<{ name: string }[]>`
      select conname as name from pg_constraint
       where connamespace = 'auth'::regnamespace and contype = 'f' and confdeltype = 'c' order by 1`;
    assert.deepEqual(cascades.map((c) => c.name), [
      "identities_user_id_fkey",
      "mfa_amr_claims_session_id_fkey",
      "refresh_tokens_session_id_fkey",
      "sessions_user_id_fkey",
    ]);
  });
});

Deno.test("the Auth service connects as supabase_auth_admin", async () => {
  await authScenario(async ({ sql, signUp }) => {
    await signUp(); // the service has a connection open now
    const roles = await sql<{ role: string }[]>`
      select distinct usename as role from pg_stat_activity where application_name = 'auth'`;
    assert.deepEqual(roles.map((r) => r.role), ["supabase_auth_admin"]);
  });
});

Deno.test("schema.sql applies again on a database that has it, changing nothing (npm start runs it each time)", async () => {
  await authScenario(async ({ sql }) => {
    const shape = async () =>
      await sql`
        select 'column' as kind, table_name || '.' || column_name || ' ' || data_type as what
          from information_schema.columns where table_schema = 'auth'
        union all
        select 'constraint', conrelid::regclass || ' ' || pg_get_constraintdef(oid)
          from pg_constraint where connamespace = 'auth'::regnamespace
        union all
        select 'index', indexdef from pg_indexes where schemaname = 'auth'
        order by 1, 2`;
    const before = await shape();
    const out = await new Deno.Command("psql", {
      args: [stack.dbUrl, "-XqAt", "-v", "ON_ERROR_STOP=1", "-f", SCHEMA_SQL],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    assert.deepEqual(await shape(), before);
  });
});

Deno.test("on a fresh database (bootstrap, schema.sql, migrations: db:reset's order) Auth signs a user up and deletes it", async () => {
  await using db = await scratchDatabase("auth");
  await psql(db.url, { file: SCHEMA_SQL });
  await applyMigrations(db.url);
  await using auth = await startAuthInstance({ DB_URL: db.url });
  const sql = postgres(db.url, { max: 1, onnotice: () => {} });
  try {
    const { data, error } = await auth.client().signUp({
      email: "fresh@example.com",
      password: "long-enough-1",
    });
    assert.equal(error, null);
    const userId = data.user!.id;
    const [made] = await sql`select count(*)::int as n from public.users where id = ${userId}`;
    assert.equal(made.n, 1);
    assert.equal((await auth.client({ key: "service_role" }).admin.deleteUser(userId)).error, null);
    const [left] = await sql`
      select (select count(*)::int from auth.users) + (select count(*)::int from public.users where id = ${userId}) as n`;
    assert.equal(left.n, 0);
  } finally {
    await sql.end();
  }
});
