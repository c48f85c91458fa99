// The Data API's schema cache: built from the catalog at start, reloaded on NOTIFY pgrst (a LISTEN on its own
// connection) and on SIGHUP, and rebuilt after its connections are lost (as when npm run db:reset drops the
// database): nothing a request does queries the catalog.
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { testSql } from "./_lib/db.ts";
import { anon, rest, waitForTable } from "./_lib/rest-conformance.ts";
import { stack } from "./_lib/stack.ts";

const sql = testSql(2);
const TABLE = "conformance_probe";
const restPid = async () =>
  Number((await Deno.readTextFile(join(dirname(stack.keysFile), "rest.pid"))).trim());

await sql.unsafe(
  `drop table if exists public.${TABLE}; drop function if exists public.conformance_probe_fn()`,
);
await sql`notify pgrst, 'reload schema'`;
await waitForTable(TABLE, false);

const createTable = `
  create table public.${TABLE} (id int primary key, label text not null);
  alter table public.${TABLE} enable row level security;
  create policy "Conformance fixture: anyone reads" on public.${TABLE} for select to anon using (true);
  grant select on public.${TABLE} to anon;
  insert into public.${TABLE} values (1, 'fresh');`;

Deno.test("a table created after start is unknown (PGRST205) until NOTIFY pgrst reloads the cache", async () => {
  await sql.unsafe(createTable);
  const before = await anon().from(TABLE).select("*");
  assert.equal(before.status, 404);
  assert.equal(before.error?.code, "PGRST205");
  await sql`notify pgrst, 'reload schema'`;
  await waitForTable(TABLE);
  const after = await anon().from(TABLE).select("id, label");
  assert.deepEqual([after.data, after.error], [[{ id: 1, label: "fresh" }], null]);
});

Deno.test("a NOTIFY with an empty payload reloads too; a dropped table is gone after it", async () => {
  await sql.unsafe(`drop table public.${TABLE}`);
  await sql`select pg_notify('pgrst', '')`;
  await waitForTable(TABLE, false);
  const gone = await anon().from(TABLE).select("*");
  assert.equal(gone.error?.code, "PGRST205");
});

Deno.test("SIGHUP reloads the schema cache (npm run db:reset sends it)", async () => {
  await sql.unsafe(createTable);
  await sql.unsafe(`
    create function public.conformance_probe_fn() returns text language sql stable as $$ select 'here' $$;
    grant execute on function public.conformance_probe_fn() to anon;`);
  Deno.kill(await restPid(), "SIGHUP");
  await waitForTable(TABLE);
  assert.deepEqual((await anon().from(TABLE).select("label")).data, [{ label: "fresh" }]);
  assert.equal((await anon().rpc("conformance_probe_fn")).data, "here");
  await sql.unsafe(`drop table public.${TABLE}; drop function public.conformance_probe_fn()`);
  Deno.kill(await restPid(), "SIGHUP");
  await waitForTable(TABLE, false);
});

Deno.test("after its database connections are killed it reconnects, reloads and hears NOTIFY again", async () => {
  const killed = await sql`
    select count(*)::int as n from (
      select pg_terminate_backend(pid) from pg_stat_activity where usename = 'authenticator'
    ) _`;
  assert.ok(killed[0].n >= 1, "the listener connection at least");
  // The first request may meet a pool connection that is going away; the service recovers by itself.
  const deadline = Date.now() + 15_000;
  while (true) {
    const { status } = await anon().from("subscription_plans").select("id").limit(1);
    if (status === 200) break;
    assert.ok(Date.now() < deadline, `still ${status} after the connections were killed`);
    await new Promise((r) => setTimeout(r, 100));
  }
  await sql.unsafe(createTable);
  // The listener is back on its own connection: a NOTIFY (repeated while it reconnects) is heard.
  const until = Date.now() + 15_000;
  while (true) {
    await sql`notify pgrst, 'reload schema'`;
    const res = await rest(`/${TABLE}?select=label`);
    if (res.status === 200) {
      assert.deepEqual(await res.json(), [{ label: "fresh" }]);
      break;
    }
    await res.body?.cancel();
    assert.ok(Date.now() < until, "the reload after reconnecting never came");
    await new Promise((r) => setTimeout(r, 200));
  }
});

Deno.test("requests never query the catalog: pg_stat_statements sees no catalog reads by the API roles", async () => {
  // A schema cache reload still in flight from an earlier NOTIFY may land in the window once; a per-request
  // catalog read would run once for every request.
  const REQUESTS = 20;
  await sql`select extensions.pg_stat_statements_reset()`;
  for (let i = 0; i < REQUESTS; i++) {
    const { error } = await anon().from(TABLE).select("id, label").eq("id", 1);
    assert.equal(error, null);
  }
  const rows = await sql`
    select s.query, s.calls::int from extensions.pg_stat_statements s join pg_roles r on r.oid = s.userid
     where r.rolname in ('authenticator', 'anon', 'authenticated', 'service_role')
       and (s.query ilike '%pg_catalog.pg_class%' or s.query ilike '%pg_proc%') and s.calls >= ${REQUESTS}`;
  assert.deepEqual(rows.map((r) => r.query), []);
});

Deno.test("rest schema cache teardown", async () => {
  await sql.unsafe(
    `drop table if exists public.${TABLE}; drop function if exists public.conformance_probe_fn()`,
  );
  await sql`notify pgrst, 'reload schema'`;
  await waitForTable(TABLE, false);
  await sql.end();
});
