// Functions through supabase-js's rpc() against the Data API stand-in: named arguments (POST), GET for
// stable/immutable functions, overloads told apart by argument names, defaults, a single unnamed json parameter,
// set-returning functions read like tables (filters, order, limit, select=, embedding, counts), RETURNS TABLE,
// single composites and scalars, void (204), variadic, and PGRST202/PGRST203 and the errors of a call.
import assert from "node:assert/strict";
import { createTestUser, deleteTestUsers, testSql } from "./_lib/db.ts";
import { createFixture, dropFixture, type Fixture, rest } from "./_lib/rest-fixtures.ts";
import { anonClient, clientWithToken, serviceClient } from "./_lib/supabase.ts";
import { es256, userClaims } from "./_lib/tokens.ts";

const sql = testSql(2);
const db = anonClient();
const rpc = (
  fn: string,
  args: Record<string, unknown> = {},
  opts: Record<string, unknown> = {},
  client: unknown = db,
) =>
  // deno-lint-ignore no-explicit-any
  (client as any).rpc(fn, args, opts);

const FIXTURE: Fixture = {
  tables: ["conformance_rpc_owners", "conformance_rpc_items", "conformance_rpc_log"],
  functions: [
    "public.conformance_rpc_add(int, int)",
    "public.conformance_rpc_items_of(text)",
    "public.conformance_rpc_one_item(int)",
    "public.conformance_rpc_echo(json)",
    "public.conformance_rpc_echo_named(jsonb)",
    "public.conformance_rpc_greet()",
    "public.conformance_rpc_greet(text)",
    "public.conformance_rpc_greet(text, text)",
    "public.conformance_rpc_defaults(int, int)",
    "public.conformance_rpc_squares(int)",
    "public.conformance_rpc_log_it(text)",
    "public.conformance_rpc_write()",
    "public.conformance_rpc_sum(int[])",
    "public.conformance_rpc_secret()",
    "public.conformance_rpc_twin(int)",
    "public.conformance_rpc_twin(text)",
  ],
  probe: "rpc/conformance_rpc_add?a=1&b=1",
  ddl: `
    create table public.conformance_rpc_owners (id int primary key, name text not null);
    create table public.conformance_rpc_items (
      id int primary key, name text not null, kind text not null,
      owner_id int references public.conformance_rpc_owners (id));
    create table public.conformance_rpc_log (msg text not null);
    insert into public.conformance_rpc_owners values (1, 'Ada'), (2, 'Grace');
    insert into public.conformance_rpc_items values (1, 'anvil', 'tool', 1), (2, 'brush', 'art', 2),
      (3, 'chisel', 'tool', 2), (4, 'drill', 'tool', null);
    grant select on public.conformance_rpc_owners, public.conformance_rpc_items to anon, authenticated;
    grant select, insert on public.conformance_rpc_log to anon, authenticated;

    create function public.conformance_rpc_add(a int, b int) returns int language sql immutable as $$ select a + b $$;
    create function public.conformance_rpc_items_of(p_kind text) returns setof public.conformance_rpc_items
      language sql stable as $$ select * from public.conformance_rpc_items where kind = p_kind order by id $$;
    create function public.conformance_rpc_one_item(p_id int) returns public.conformance_rpc_items
      language sql stable as $$ select * from public.conformance_rpc_items where id = p_id $$;
    create function public.conformance_rpc_echo(json) returns json language sql immutable as $$ select $1 $$;
    create function public.conformance_rpc_echo_named(payload jsonb) returns jsonb language sql immutable
      as $$ select payload $$;
    create function public.conformance_rpc_greet() returns text language sql immutable as $$ select 'hello world' $$;
    create function public.conformance_rpc_greet(name text) returns text language sql immutable
      as $$ select 'hello ' || name $$;
    create function public.conformance_rpc_greet(name text, greeting text) returns text language sql immutable
      as $$ select greeting || ' ' || name $$;
    create function public.conformance_rpc_defaults(a int, b int default 10) returns int language sql immutable
      as $$ select a * b $$;
    create function public.conformance_rpc_squares(n int) returns table (i int, square int) language sql immutable
      as $$ select g, g * g from generate_series(1, n) g $$;
    create function public.conformance_rpc_log_it(msg text) returns void language sql volatile
      as $$ insert into public.conformance_rpc_log values (msg) $$;
    create function public.conformance_rpc_write() returns int language sql volatile
      as $$ insert into public.conformance_rpc_log values ('written') returning 1 $$;
    create function public.conformance_rpc_sum(variadic v int[]) returns int language sql immutable
      as $$ select sum(x)::int from unnest(v) x $$;
    create function public.conformance_rpc_secret() returns int language sql immutable as $$ select 42 $$;
    create function public.conformance_rpc_twin(a int) returns text language sql immutable as $$ select 'int' $$;
    create function public.conformance_rpc_twin(a text) returns text language sql immutable as $$ select 'text' $$;
    grant execute on function public.conformance_rpc_add(int, int), public.conformance_rpc_items_of(text),
      public.conformance_rpc_one_item(int), public.conformance_rpc_echo(json),
      public.conformance_rpc_echo_named(jsonb), public.conformance_rpc_greet(),
      public.conformance_rpc_greet(text), public.conformance_rpc_greet(text, text),
      public.conformance_rpc_defaults(int, int), public.conformance_rpc_squares(int),
      public.conformance_rpc_log_it(text), public.conformance_rpc_write(), public.conformance_rpc_sum(int[]),
      public.conformance_rpc_twin(int), public.conformance_rpc_twin(text) to anon, authenticated;
    grant execute on function public.conformance_rpc_secret() to service_role;`,
};

await createFixture(sql, FIXTURE);

Deno.test("POST /rpc with named arguments returns a scalar as a JSON value", async () => {
  const { data, error, status } = await rpc("conformance_rpc_add", { a: 2, b: 3 });
  assert.equal(error, null);
  assert.equal(status, 200);
  assert.equal(data, 5);
});

Deno.test("GET (and HEAD) call an immutable or stable function with query-string arguments", async () => {
  const { data, error } = await rpc("conformance_rpc_add", { a: 20, b: 22 }, { get: true });
  assert.equal(error, null);
  assert.equal(data, 42);
  const res = await rest("rpc/conformance_rpc_items_of?p_kind=tool", {
    method: "HEAD",
    headers: { prefer: "count=exact" },
  });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-range"), "0-2/3");
  assert.equal(await res.text(), "");
});

Deno.test("overloads are told apart by the names of the arguments given", async () => {
  assert.equal((await rpc("conformance_rpc_greet")).data, "hello world");
  assert.equal((await rpc("conformance_rpc_greet", { name: "Ada" })).data, "hello Ada");
  assert.equal((await rpc("conformance_rpc_greet", { name: "Ada", greeting: "hi" })).data, "hi Ada");
});

Deno.test("a parameter with a default may be left out", async () => {
  assert.equal((await rpc("conformance_rpc_defaults", { a: 2 })).data, 20);
  assert.equal((await rpc("conformance_rpc_defaults", { a: 2, b: 3 })).data, 6);
});

Deno.test("a function with one unnamed json parameter takes the whole body", async () => {
  const body = { nested: { list: [1, 2, 3] }, text: "x" };
  const { data, error } = await rpc("conformance_rpc_echo", body);
  assert.equal(error, null);
  assert.deepEqual(data, body);
});

Deno.test("Prefer: params=single-object (PostgREST 12) passes the whole body to a function's one json parameter", async () => {
  const res = await rest("rpc/conformance_rpc_echo_named", {
    method: "POST",
    headers: { "content-type": "application/json", prefer: "params=single-object" },
    body: JSON.stringify({ a: 1, b: [2] }),
  });
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { a: 1, b: [2] });
  const named = await rpc("conformance_rpc_echo_named", { payload: { a: 1 } });
  assert.deepEqual(named.data, { a: 1 }, "without the preference the body's keys are the arguments");
});

Deno.test("a set-returning function is read like a table: filters, order, limit, select= and embedding", async () => {
  const { data, error, status } = await rpc("conformance_rpc_items_of", { p_kind: "tool" })
    .select("name, conformance_rpc_owners(name)").gt("id", 1).order("name", { ascending: false }).limit(2);
  assert.equal(error, null);
  assert.equal(status, 200);
  assert.deepEqual(data, [
    { name: "drill", conformance_rpc_owners: null },
    { name: "chisel", conformance_rpc_owners: { name: "Grace" } },
  ]);
});

Deno.test("a count on a function's rows gives Content-Range and 206 for a partial page", async () => {
  const { data, count, status } = await rpc("conformance_rpc_items_of", { p_kind: "tool" }, {
    count: "exact",
  })
    .select("id").range(0, 0);
  assert.deepEqual(data, [{ id: 1 }]);
  assert.equal(count, 3);
  assert.equal(status, 206);
});

Deno.test("RETURNS TABLE columns can be selected and filtered", async () => {
  const { data, error } = await rpc("conformance_rpc_squares", { n: 5 }).select("square").gte("square", 9);
  assert.equal(error, null);
  assert.deepEqual(data, [{ square: 9 }, { square: 16 }, { square: 25 }]);
  const unknown = await rpc("conformance_rpc_squares", { n: 2 }).select("cube");
  assert.equal(unknown.status, 400);
  assert.equal(unknown.error.message, "column conformance_rpc_squares.cube does not exist");
});

Deno.test("a function returning one row of a table answers an object", async () => {
  const { data, error } = await rpc("conformance_rpc_one_item", { p_id: 3 });
  assert.equal(error, null);
  assert.deepEqual(data, { id: 3, name: "chisel", kind: "tool", owner_id: 2 });
});

Deno.test("a void function answers 204 with no body, and its work is committed", async () => {
  const msg = `void-${crypto.randomUUID()}`;
  const { data, error, status } = await rpc("conformance_rpc_log_it", { msg });
  assert.equal(error, null);
  assert.equal(status, 204);
  assert.equal(data, null);
  assert.equal(
    (await sql`select count(*)::int as n from public.conformance_rpc_log where msg = ${msg}`)[0].n,
    1,
  );
});

Deno.test("GET runs the call read-only: a function that writes is 405 25006", async () => {
  const { error, status } = await rpc("conformance_rpc_write", {}, { get: true });
  assert.equal(status, 405);
  assert.equal(error.code, "25006");
  assert.equal(error.message, "cannot execute INSERT in a read-only transaction");
  const post = await rpc("conformance_rpc_write");
  assert.equal(post.status, 200);
  assert.equal(post.data, 1);
});

Deno.test("variadic parameters take repeated GET arguments or a JSON array", async () => {
  const res = await rest("rpc/conformance_rpc_sum?v=1&v=2&v=39");
  assert.equal(res.status, 200);
  assert.equal(await res.json(), 42);
  const { data, error } = await rpc("conformance_rpc_sum", { v: [10, 20] });
  assert.equal(error, null);
  assert.equal(data, 30);
});

Deno.test("an unknown function is 404 PGRST202 with PostgREST's details and 'Perhaps you meant' hint", async () => {
  const { data, error, status } = await rpc("conformance_rpc_ad", { a: 1, b: 2 });
  assert.equal(data, null);
  assert.equal(status, 404);
  assert.deepEqual(error, {
    code: "PGRST202",
    details:
      "Searched for the function public.conformance_rpc_ad with parameters a, b or with a single unnamed " +
      "json/jsonb parameter, but no matches were found in the schema cache.",
    hint: "Perhaps you meant to call the function public.conformance_rpc_add",
    message: "Could not find the function public.conformance_rpc_ad(a, b) in the schema cache",
  });
});

Deno.test("arguments that match no overload are PGRST202, hinting at the closest parameter list", async () => {
  const { error, status } = await rpc("conformance_rpc_greet", { nam: "Ada", greetin: "hi" });
  assert.equal(status, 404);
  assert.equal(error.code, "PGRST202");
  assert.equal(
    error.message,
    "Could not find the function public.conformance_rpc_greet(greetin, nam) in the schema cache",
  );
  assert.equal(
    error.hint,
    "Perhaps you meant to call the function public.conformance_rpc_greet(greeting, name)",
  );
});

Deno.test("overloads with the same argument names are ambiguous: 300 PGRST203", async () => {
  const { error, status } = await rpc("conformance_rpc_twin", { a: 1 });
  assert.equal(status, 300);
  assert.equal(error.code, "PGRST203");
  assert.equal(
    error.message,
    "Could not choose the best candidate function between: public.conformance_rpc_twin(a => integer), " +
      "public.conformance_rpc_twin(a => text)",
  );
  assert.equal(
    error.hint,
    "Try renaming the parameters or the function itself in the database so function overloading can be resolved",
  );
});

Deno.test("a function the role may not execute is 42501: 401 for anon, 403 for a user, fine for service_role", async () => {
  const anon = await rpc("conformance_rpc_secret");
  assert.equal(anon.status, 401);
  assert.equal(anon.error.code, "42501");
  assert.equal(anon.error.message, "permission denied for function conformance_rpc_secret");
  const user = await createTestUser(sql);
  try {
    const signedIn = await rpc(
      "conformance_rpc_secret",
      {},
      {},
      clientWithToken(await es256(userClaims(user.id))),
    );
    assert.equal(signedIn.status, 403);
  } finally {
    await deleteTestUsers(sql, [user]);
  }
  const service = await rpc("conformance_rpc_secret", {}, {}, serviceClient());
  assert.equal(service.data, 42);
});

Deno.test(".single() on a set-returning function with several rows is 406 PGRST116", async () => {
  const { error, status } = await rpc("conformance_rpc_items_of", { p_kind: "tool" }).single();
  assert.equal(status, 406);
  assert.equal(error.code, "PGRST116");
  const one = await rpc("conformance_rpc_items_of", { p_kind: "art" }).select("name").single();
  assert.deepEqual(one.data, { name: "brush" });
});

Deno.test("a wrongly typed argument is PostgreSQL's 22P02 as a 400", async () => {
  const { error, status } = await rpc("conformance_rpc_add", { a: "two", b: 3 });
  assert.equal(status, 400);
  assert.equal(error.code, "22P02");
});

Deno.test("the product's get_usage_summary: a signed-in user's own usage; anon may not call it", async () => {
  const user = await createTestUser(sql);
  try {
    const me = clientWithToken(await es256(userClaims(user.id)));
    const { data, error } = await me.rpc("get_usage_summary", { p_from: "2026-01-01", p_to: "2026-12-31" });
    assert.equal(error, null);
    assert.deepEqual(data, []);
    const anon = await anonClient().rpc("get_usage_summary", { p_from: "2026-01-01", p_to: "2026-12-31" });
    assert.equal(anon.status, 401);
    assert.equal(anon.error?.code, "42501");
  } finally {
    await deleteTestUsers(sql, [user]);
  }
});

Deno.test("rpc test teardown", async () => {
  await dropFixture(sql, FIXTURE);
  await sql.end();
});
