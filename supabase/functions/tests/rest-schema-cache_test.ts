// The Data API stand-in's schema cache, seen through supabase-js: built from the catalog and only from there
// (a table created since is unknown until a reload), rebuilt on `NOTIFY pgrst, 'reload schema'` (its LISTEN
// connection), on SIGHUP (what npm run db:reset sends), and after its database connections are cut (as when the
// database is dropped and recreated), after which it hears NOTIFY again.
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { psql, scratchDatabase } from "../../../scripts/db/scratch.ts";
import { testSql } from "./_lib/db.ts";
import { answers, reloadSchemaCache, rest, unknownToCache } from "./_lib/rest-fixtures.ts";
import { stack } from "./_lib/stack.ts";
import { anonClient } from "./_lib/supabase.ts";

const sql = testSql(2);
const db = anonClient();
// deno-lint-ignore no-explicit-any
const from = (table: string) => (db as any).from(table);
const TABLE = "conformance_cache_notes";
const FN = "public.conformance_cache_version()";
const SERVER = new URL("../../../scripts/stack/rest/server.ts", import.meta.url).pathname;

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

async function dropAll(): Promise<void> {
  await sql.unsafe(`drop table if exists public.${TABLE}; drop function if exists ${FN}`);
}
const createTable = `
  create table public.${TABLE} (id int primary key, body text not null);
  insert into public.${TABLE} values (1, 'first');
  grant select on public.${TABLE} to anon;`;

await dropAll();
await reloadSchemaCache(sql, unknownToCache(`${TABLE}?limit=0`));

/**
 * Makes a catalog change and checks the Data API does not see it yet. The stack is shared: a NOTIFY from
 * another test may reload the cache in between, so a change the cache picked up that way is undone and tried
 * again; an implementation that read the catalog per request would never show the stale answer.
 */
async function seenStale(change: string, undo: string, stale: () => Promise<boolean>): Promise<void> {
  for (let attempt = 0; attempt < 5; attempt++) {
    await sql.unsafe(change);
    if (await stale()) return;
    await sql.unsafe(undo);
    await reloadSchemaCache(sql, stale);
  }
  assert.fail("the Data API kept seeing the change before any reload");
}

Deno.test("a table created after the cache was built is unknown (PGRST205) until NOTIFY pgrst reloads it", async () => {
  await seenStale(createTable, `drop table public.${TABLE}`, async () => {
    const before = await from(TABLE).select("id, body");
    return before.status === 404 && before.error.code === "PGRST205";
  });
  await reloadSchemaCache(sql, answers(`${TABLE}?limit=0`, 200));
  const after = await from(TABLE).select("id, body");
  assert.equal(after.error, null);
  assert.deepEqual(after.data, [{ id: 1, body: "first" }]);
});

Deno.test("a column added later is selectable after the reload", async () => {
  await seenStale(
    `alter table public.${TABLE} add column mood text not null default 'calm'`,
    `alter table public.${TABLE} drop column mood`,
    async () => {
      const before = await from(TABLE).select("mood");
      return before.status === 400 && before.error.code === "42703";
    },
  );
  await reloadSchemaCache(sql, answers(`${TABLE}?select=mood`, 200));
  const after = await from(TABLE).select("id, mood");
  assert.deepEqual(after.data, [{ id: 1, mood: "calm" }]);
});

Deno.test("SIGHUP rebuilds the cache (npm run db:reset sends it to the service)", async () => {
  await seenStale(
    `create function ${FN} returns text language sql stable as $$ select 'v1' $$;
     grant execute on function ${FN} to anon;`,
    `drop function ${FN}`,
    async () => {
      const before = await db.rpc("conformance_cache_version" as never);
      return before.status === 404 && before.error?.code === "PGRST202";
    },
  );
  const pid = Number((await Deno.readTextFile(join(dirname(stack.keysFile), "rest.pid"))).trim());
  Deno.kill(pid, "SIGHUP");
  const deadline = Date.now() + 10_000;
  while ((await db.rpc("conformance_cache_version" as never)).status !== 200) {
    assert.ok(Date.now() < deadline, "SIGHUP did not reload the schema cache");
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal((await db.rpc("conformance_cache_version" as never)).data, "v1");
});

Deno.test("after its database connections are cut it reconnects, reloads and hears NOTIFY again", async () => {
  const cut = await sql`
    select count(*)::int as n from (
      select pg_terminate_backend(pid) from pg_stat_activity where application_name like 'rest stand-in%'
    ) _`;
  assert.ok(cut[0].n >= 1, "at least the listener's connection");
  const deadline = Date.now() + 15_000;
  for (;;) {
    const { status } = await from(TABLE).select("id").limit(1);
    if (status === 200) break;
    assert.ok(Date.now() < deadline, `still ${status} after the connections were cut`);
    await new Promise((r) => setTimeout(r, 100));
  }
  await sql.unsafe(`alter table public.${TABLE} add column late text`);
  const until = Date.now() + 15_000;
  for (;;) {
    await sql`notify pgrst, 'reload schema'`;
    const res = await rest(`${TABLE}?select=late`);
    await res.body?.cancel();
    if (res.status === 200) break;
    assert.ok(Date.now() < until, "no reload after reconnecting");
    await new Promise((r) => setTimeout(r, 200));
  }
});

Deno.test("a dropped table is gone after the reload (PGRST205)", async () => {
  await dropAll();
  await reloadSchemaCache(sql, unknownToCache(`${TABLE}?limit=0`));
  const { error, status } = await from(TABLE).select("*");
  assert.equal(status, 404);
  assert.equal(error.code, "PGRST205");
});

Deno.test("it survives its database being dropped and recreated (db:reset): 503 meanwhile, the new schema after SIGHUP", async () => {
  // A Data API of its own on a scratch cluster: the shared stack's database is never dropped by a test.
  await using scratch = await scratchDatabase("rest-reset");
  const table = (label: string) => `
    create table public.conformance_cache_reset (id int primary key, label text not null);
    insert into public.conformance_cache_reset values (1, '${label}');
    grant select on public.conformance_cache_reset to anon;`;
  await psql(scratch.url, { sql: table("before the reset") });
  const port = freePort();
  const server = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--quiet", SERVER],
    env: { API_PORT: String(port), DB_URL: scratch.url, KEYS_FILE: stack.keysFile },
    stdout: "null",
    stderr: "null",
  }).spawn();
  const label = async () => {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/conformance_cache_reset?select=label`, {
        headers: { authorization: `Bearer ${stack.anonKey}` },
      });
      const body = await res.json();
      return { status: res.status, body };
    } catch {
      return { status: 0, body: null };
    }
  };
  const until = async (what: string, ok: (r: { status: number; body: unknown }) => boolean) => {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const r = await label();
      if (ok(r)) return r;
      assert.ok(Date.now() < deadline, `${what}: last answer ${r.status} ${JSON.stringify(r.body)}`);
      await new Promise((res) => setTimeout(res, 100));
    }
  };
  try {
    await until("the service came up", (r) => r.status === 200);
    assert.deepEqual((await label()).body, [{ label: "before the reset" }]);
    const template = scratch.url.replace(/\/postgres$/, "/template1");
    await psql(template, { sql: "drop database postgres with (force)" });
    const gone = await until("no database", (r) => r.status === 503);
    assert.equal((gone.body as { code: string }).code, "PGRST000");
    await psql(template, { sql: "create database postgres" });
    await psql(scratch.url, {
      file: new URL("../../../scripts/stack/bootstrap.sql", import.meta.url).pathname,
    });
    await psql(scratch.url, { sql: table("after the reset") });
    server.kill("SIGHUP");
    const back = await until(
      "the new database's schema",
      (r) => r.status === 200 && JSON.stringify(r.body).includes("after"),
    );
    assert.deepEqual(back.body, [{ label: "after the reset" }]);
  } finally {
    server.kill("SIGTERM");
    await server.status;
  }
});

Deno.test("after db:reset every pooled connection is new: the first requests on the recreated database all succeed", async () => {
  // db:reset drops the database while nothing is asking: the pool still holds connections to the dropped one.
  // Without replacing them (on SIGHUP, or when the listener connects again), each of the next requests would meet
  // a dead connection and answer 503.
  await using scratch = await scratchDatabase("rest-pool");
  const schema = `
    create table public.conformance_pool_reset (id int primary key);
    insert into public.conformance_pool_reset values (1);
    grant select on public.conformance_pool_reset to anon;`;
  await psql(scratch.url, { sql: schema });
  const port = freePort();
  const server = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--quiet", SERVER],
    env: { API_PORT: String(port), DB_URL: scratch.url, KEYS_FILE: stack.keysFile, REST_DB_POOL: "8" },
    stdout: "null",
    stderr: "null",
  }).spawn();
  const read = async () => {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/conformance_pool_reset?select=id`, {
        headers: { authorization: `Bearer ${stack.anonKey}` },
      });
      await res.body?.cancel();
      return res.status;
    } catch {
      return 0;
    }
  };
  const burst = () => Promise.all(Array.from({ length: 8 }, read));
  try {
    for (const deadline = Date.now() + 20_000; (await read()) !== 200;) {
      assert.ok(Date.now() < deadline, "the service came up");
      await new Promise((res) => setTimeout(res, 100));
    }
    assert.deepEqual(await burst(), Array(8).fill(200), "the pool holds 8 open connections");
    const template = scratch.url.replace(/\/postgres$/, "/template1");
    await psql(template, { sql: "drop database postgres with (force)" });
    await psql(template, { sql: "create database postgres" });
    await psql(scratch.url, {
      file: new URL("../../../scripts/stack/bootstrap.sql", import.meta.url).pathname,
    });
    await psql(scratch.url, { sql: schema });
    server.kill("SIGHUP");
    await new Promise((res) => setTimeout(res, 1500)); // the reload; no request meanwhile
    assert.deepEqual(await burst(), Array(8).fill(200));
  } finally {
    server.kill("SIGTERM");
    await server.status;
  }
});

Deno.test("schema cache test teardown", async () => {
  await dropAll();
  await reloadSchemaCache(sql, unknownToCache(`${TABLE}?limit=0`));
  await sql.end();
});
