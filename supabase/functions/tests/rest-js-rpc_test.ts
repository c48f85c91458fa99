// Functions through POST/GET /rpc/<fn>, as PostgREST calls them: named arguments (overloads told apart by
// their names), one json argument, GET for stable functions, set-returning results with filters, order, limit,
// select and embedding, scalars, void, and PGRST202 when nothing matches.
import assert from "node:assert/strict";
import { createTestUser, deleteTestUsers, testSql, type TestUser } from "./_lib/db.ts";
import { anon, asService, dropFixtures, installFixtures, rest } from "./_lib/rest-conformance.ts";
import { anonClient, clientWithToken } from "./_lib/supabase.ts";
import { es256, userClaims } from "./_lib/tokens.ts";

const sql = testSql(2);
const users: TestUser[] = [];
await installFixtures(sql);

Deno.test("named arguments call the function; a scalar result is a JSON scalar", async () => {
  const { data, error, status } = await anon().rpc("conformance_sum", { a: 2, b: 3 });
  assert.deepEqual([data, error, status], [5, null, 200]);
});

Deno.test("overloads are told apart by their argument names", async () => {
  assert.equal((await anon().rpc("conformance_sum", { a: 1, b: 2, c: 3 })).data, 6);
  assert.equal((await anon().rpc("conformance_sum", { b: 7, a: 1 })).data, 8);
});

Deno.test("an argument with a default may be left out", async () => {
  assert.equal((await anon().rpc("conformance_scaled", { a: 4 })).data, 40);
  assert.equal((await anon().rpc("conformance_scaled", { a: 4, factor: 2 })).data, 8);
});

Deno.test("GET calls a stable or immutable function with its arguments in the query string", async () => {
  const { data, error } = await anon().rpc("conformance_sum", { a: 20, b: 22 }, { get: true });
  assert.deepEqual([data, error], [42, null]);
  const res = await rest("/rpc/conformance_sum?a=1&b=1");
  assert.equal(await res.json(), 2);
});

Deno.test("a named json argument receives its value; an unnamed json argument receives the whole body", async () => {
  const named = await anon().rpc("conformance_echo_payload", { payload: { x: [1, 2], y: "z" } });
  assert.deepEqual(named.data, { x: [1, 2], y: "z" });
  const whole = await anon().rpc("conformance_echo_whole", { anything: 1, goes: [true] });
  assert.deepEqual(whole.data, { anything: 1, goes: [true] });
});

Deno.test("Prefer: params=single-object passes the whole body to the one json argument", async () => {
  const res = await rest("/rpc/conformance_echo_payload", {
    method: "POST",
    headers: { "content-type": "application/json", prefer: "params=single-object" },
    body: JSON.stringify({ not_payload: 1 }),
  });
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { not_payload: 1 });
});

Deno.test("a set-returning function takes filters, order, limit and select like a table", async () => {
  const { data, error, count } = await anon()
    .rpc("conformance_works_by_status", { p_status: "published" }, { count: "exact" })
    .select("id, title")
    .gte("price", 10)
    .order("id", { ascending: false })
    .limit(2);
  assert.equal(error, null);
  assert.equal(count, 3);
  assert.deepEqual(data, [{ id: 5, title: "Invisible Cities" }, {
    id: 2,
    title: "The Left Hand of Darkness",
  }]);
});

Deno.test("a set-returning function's rows embed through the foreign keys of their table", async () => {
  const { data, error } = await anon()
    .rpc("conformance_works_by_status", { p_status: "draft" })
    .select("title, author:conformance_writers!author_id(name), conformance_critiques(stars)");
  assert.equal(error, null);
  assert.deepEqual(data, [{
    title: "The Cyberiad",
    author: { name: "Stanisław Lem" },
    conformance_critiques: [],
  }]);
});

Deno.test("setof scalar answers an array of values; RETURNS TABLE an array of objects that filter", async () => {
  const titles = await anon().rpc("conformance_work_titles");
  assert.equal((titles.data as string[]).length, 6);
  assert.equal((titles.data as string[])[0], "The Dispossessed");
  const pairs = await anon().rpc("conformance_number_pairs").gte("n", 2).order("n", { ascending: false });
  assert.deepEqual(pairs.data, [{ n: 3, label: "three" }, { n: 2, label: "two" }]);
});

Deno.test("a function returning one composite answers an object; single() agrees", async () => {
  const one = await anon().rpc("conformance_writer", { p_id: 3 });
  assert.deepEqual(one.data, { id: 3, name: "Italo Calvino", country: "IT" });
  const single = await anon().rpc("conformance_writer", { p_id: 2 }).single();
  assert.deepEqual(single.data, { id: 2, name: "Stanisław Lem", country: "PL" });
});

Deno.test("a void function answers 204 with no body", async () => {
  const { data, error, status } = await anon().rpc("conformance_bump", { p_id: 1 });
  assert.deepEqual([data, error, status], [null, null, 204]);
  const [row] = await sql`select hits from public.conformance_keyed where id = 1`;
  assert.equal(row.hits, 1);
});

Deno.test("a volatile function called with GET runs read-only and its write is 405 25006", async () => {
  const { error, status } = await anon().rpc("conformance_bump", { p_id: 1 }, { get: true });
  assert.equal(status, 405);
  assert.equal(error?.code, "25006");
  assert.equal(error?.message, "cannot execute UPDATE in a read-only transaction");
});

Deno.test("HEAD on a function answers its count without a body", async () => {
  const { data, count, status } = await anon().rpc("conformance_number_pairs", {}, {
    head: true,
    count: "exact",
  });
  assert.deepEqual([data, count, status], [null, 3, 200]);
});

Deno.test("an unknown function is 404 PGRST202 with PostgREST's suggestion", async () => {
  const { error, status } = await anon().rpc("conformance_su", { a: 1, b: 2 });
  assert.equal(status, 404);
  assert.deepEqual(error, {
    code: "PGRST202",
    details:
      "Searched for the function public.conformance_su with parameters a, b or with a single unnamed json/jsonb parameter, but no matches were found in the schema cache.",
    hint: "Perhaps you meant to call the function public.conformance_sum",
    message: "Could not find the function public.conformance_su(a, b) in the schema cache",
  });
});

Deno.test("arguments no overload takes are 404 PGRST202, suggesting the closest parameter list", async () => {
  const { error, status } = await anon().rpc("conformance_sum", { a: 1, x: 2 });
  assert.equal(status, 404);
  assert.equal(error?.code, "PGRST202");
  assert.equal(
    error?.message,
    "Could not find the function public.conformance_sum(a, x) in the schema cache",
  );
  assert.equal(error?.hint, "Perhaps you meant to call the function public.conformance_sum(a, b)");
});

Deno.test("a function without arguments called with none says so in PGRST202", async () => {
  const { error } = await anon().rpc("conformance_nothing_here");
  assert.equal(
    error?.message,
    "Could not find the function public.conformance_nothing_here without parameters in the schema cache",
  );
});

// ------------------------------------------------------------------------------- the product's functions
Deno.test("product: get_usage_summary runs for a signed-in user and is refused to anon (401 42501)", async () => {
  const user = await createTestUser(sql);
  users.push(user);
  const client = clientWithToken(await es256(userClaims(user.id)));
  const mine = await client.rpc("get_usage_summary", { p_from: "2020-01-01", p_to: "2030-01-01" });
  assert.deepEqual([mine.data, mine.error, mine.status], [[], null, 200]);
  const refused = await anonClient().rpc("get_usage_summary", { p_from: "2020-01-01", p_to: "2030-01-01" });
  assert.equal(refused.status, 401);
  assert.equal(refused.error?.code, "42501");
  assert.equal(refused.error?.message, "permission denied for function get_usage_summary");
});

Deno.test("product: the service role calls get_usage_summary too (it sees no user's rows: auth.uid() is null)", async () => {
  const { data, error } = await asService().rpc("get_usage_summary", {
    p_from: "2020-01-01",
    p_to: "2030-01-01",
  });
  assert.deepEqual([data, error], [[], null]);
});

Deno.test("an array argument travels in a GET as a PostgreSQL array literal, and in a POST as JSON", async () => {
  assert.equal((await anon().rpc("conformance_sum_all", { nums: [1, 2, 3] }, { get: true })).data, 6);
  assert.equal((await anon().rpc("conformance_sum_all", { nums: [4, 5] })).data, 9);
});

Deno.test("a function sets the response's status and headers through response.status and response.headers", async () => {
  const res = await rest("/rpc/conformance_answer", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ status: "202" }),
  });
  assert.equal(res.status, 202);
  assert.equal(res.headers.get("x-conformance-answer"), "from sql");
  assert.equal(res.headers.get("cache-control"), "no-store");
  assert.equal(await res.json(), "answered");
  const viaClient = await anon().rpc("conformance_answer", { status: "202" });
  assert.deepEqual([viaClient.status, viaClient.data], [202, "answered"]);
});

Deno.test("a response.status that is no status code is 500 PGRST112", async () => {
  const { error, status } = await anon().rpc("conformance_answer", { status: "not-a-number" });
  assert.equal(status, 500);
  assert.deepEqual(error, {
    code: "PGRST112",
    details: null,
    hint: null,
    message: "response.status guc must be a valid status code",
  });
});

Deno.test("rest rpc teardown", async () => {
  await deleteTestUsers(sql, users);
  await dropFixtures(sql);
  await sql.end();
});
