// Reads through supabase-js against the Data API stand-in: select= (columns, *, renames, casts, JSON paths),
// order, limit/offset and the Range header, Prefer: count=exact|planned|estimated with Content-Range (206 for a
// partial page, 416 past the end), .single()/.maybeSingle(), HEAD, CSV, stripped nulls, max_rows, and the
// product's own tables under RLS.
import assert from "node:assert/strict";
import { createTestUser, deleteTestUsers, testSql } from "./_lib/db.ts";
import { createFixture, dropFixture, type Fixture, rest } from "./_lib/rest-fixtures.ts";
import { stack } from "./_lib/stack.ts";
import { anonClient, clientWithToken, serviceClient } from "./_lib/supabase.ts";
import { es256, userClaims } from "./_lib/tokens.ts";

const sql = testSql(2);
const db = anonClient();
// deno-lint-ignore no-explicit-any
const from = (table: string) => (db as any).from(table);

const FIXTURE: Fixture = {
  tables: ["conformance_reads_items", "conformance_reads_many"],
  probe: "conformance_reads_many?limit=0",
  ddl: `
    create table public.conformance_reads_items (
      id int primary key, name text not null, category text, price numeric(8,2), rating int,
      data jsonb not null default '{}', created_at timestamptz not null default '2026-01-02T03:04:05Z');
    insert into public.conformance_reads_items (id, name, category, price, rating, data) values
      (1, 'anvil', 'tools', 12.50, 4, '{"size": {"w": 3, "h": 2}, "tags": ["heavy", "iron"]}'),
      (2, 'brush', 'art', 3.00, null, '{"size": {"w": 1, "h": 8}, "tags": ["soft"]}'),
      (3, 'chisel', 'tools', 7.25, 5, '{"size": {"w": 1, "h": 5}}'),
      (4, 'drill', 'tools', 59.99, 3, '{}'),
      (5, 'easel', 'art', 41.00, null, '{"size": {"w": 9, "h": 9}}');
    create table public.conformance_reads_many (id int primary key);
    insert into public.conformance_reads_many select g from generate_series(1, 1200) g;
    analyze public.conformance_reads_many;
    grant select on public.conformance_reads_items, public.conformance_reads_many to anon, authenticated;`,
};

await createFixture(sql, FIXTURE);

const ITEMS = "conformance_reads_items";

Deno.test("select= picks columns in order; * gives every column; aliases rename", async () => {
  const { data, error, status } = await from(ITEMS).select("id, label:name").order("id").limit(2);
  assert.equal(error, null);
  assert.equal(status, 200);
  assert.deepEqual(data, [{ id: 1, label: "anvil" }, { id: 2, label: "brush" }]);
  const all = await from(ITEMS).select("*").eq("id", 3).single();
  assert.deepEqual(Object.keys(all.data), [
    "id",
    "name",
    "category",
    "price",
    "rating",
    "data",
    "created_at",
  ]);
  assert.equal(
    all.data.created_at,
    "2026-01-02T03:04:05+00:00",
    "timestamps as PostgreSQL's JSON renders them",
  );
  assert.equal(all.data.price, 7.25);
});

Deno.test("casts (col::text) change the JSON type; JSON paths (->, ->>, indexes) take the last key as the name", async () => {
  const { data, error } = await from(ITEMS)
    .select("id::text, price::text, w:data->size->w, data->size->>h, data->tags->0").eq("id", 1).single();
  assert.equal(error, null);
  assert.deepEqual(data, { id: "1", price: "12.50", w: 3, h: "2", tags: "heavy" });
});

Deno.test("a cast to a type that does not exist is 400 42704", async () => {
  const { error, status } = await from(ITEMS).select("id::nosuchtype");
  assert.equal(status, 400);
  assert.equal(error.code, "42704");
  assert.equal(error.message, 'type "nosuchtype" does not exist');
});

Deno.test("an unknown column is 400 42703 in PostgreSQL's words", async () => {
  const { data, error, status } = await from(ITEMS).select("id, nope");
  assert.equal(data, null);
  assert.equal(status, 400);
  assert.deepEqual(error, {
    code: "42703",
    details: null,
    hint: null,
    message: "column conformance_reads_items.nope does not exist",
  });
});

Deno.test("order by several columns, desc, nulls first/last", async () => {
  const { data } = await from(ITEMS).select("id").order("rating", { ascending: false, nullsFirst: true })
    .order("id");
  assert.deepEqual(data.map((r: { id: number }) => r.id), [2, 5, 3, 1, 4]);
  const last = await from(ITEMS).select("id").order("rating", { ascending: true, nullsFirst: false }).order(
    "id",
    {
      ascending: false,
    },
  );
  assert.deepEqual(last.data.map((r: { id: number }) => r.id), [4, 1, 3, 5, 2]);
  const byCategory = await from(ITEMS).select("id").order("category").order("price", { ascending: false });
  assert.deepEqual(byCategory.data.map((r: { id: number }) => r.id), [5, 2, 4, 1, 3]);
});

Deno.test("limit and range() page the rows; Content-Range says which", async () => {
  const page = await from(ITEMS).select("id").order("id").range(1, 2);
  assert.deepEqual(page.data, [{ id: 2 }, { id: 3 }]);
  const res = await rest(`${ITEMS}?select=id&order=id&offset=1&limit=2`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-range"), "1-2/*");
  await res.body?.cancel();
});

Deno.test("the Range header pages a GET as limit/offset do (Range-Unit: items)", async () => {
  const res = await rest(`${ITEMS}?select=id&order=id`, { headers: { range: "2-3", "range-unit": "items" } });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-range"), "2-3/*");
  assert.deepEqual(await res.json(), [{ id: 3 }, { id: 4 }]);
});

Deno.test("Prefer: count=exact gives the total: 206 for a partial page, 200 for all of it", async () => {
  const partial = await from(ITEMS).select("id", { count: "exact" }).order("id").range(0, 1);
  assert.equal(partial.status, 206);
  assert.equal(partial.count, 5);
  assert.equal(partial.error, null);
  const res = await rest(`${ITEMS}?select=id&limit=2`, { headers: { prefer: "count=exact" } });
  assert.equal(res.status, 206);
  assert.equal(res.headers.get("content-range"), "0-1/5");
  assert.equal(res.headers.get("preference-applied"), "count=exact");
  await res.body?.cancel();
  const whole = await from(ITEMS).select("id", { count: "exact" });
  assert.equal(whole.status, 200);
  assert.equal(whole.count, 5);
});

Deno.test("an empty result with a count is Content-Range */0", async () => {
  const res = await rest(`${ITEMS}?id=eq.99`, { headers: { prefer: "count=exact" } });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-range"), "*/0");
  assert.deepEqual(await res.json(), []);
});

Deno.test("an offset past the counted rows is 416 PGRST103", async () => {
  const { data, error, status, count } = await from(ITEMS).select("id", { count: "exact" }).range(10, 12);
  assert.equal(status, 416);
  assert.equal(data, null);
  assert.equal(count, null, "supabase-js reads the count of successful answers only");
  assert.deepEqual(error, {
    code: "PGRST103",
    details: "An offset of 10 was requested, but there are only 5 rows.",
    hint: null,
    message: "Requested range not satisfiable",
  });
  const res = await rest(`${ITEMS}?offset=10`, { headers: { prefer: "count=exact" } });
  assert.equal(res.status, 416);
  assert.equal(res.headers.get("content-range"), "*/5");
  await res.body?.cancel();
});

Deno.test("a Range header whose end is before its start is 416 PGRST103", async () => {
  const res = await rest(ITEMS, { headers: { range: "3-1" } });
  assert.equal(res.status, 416);
  const body = await res.json();
  assert.equal(body.code, "PGRST103");
  assert.equal(
    body.details,
    "The lower boundary must be lower than or equal to the upper boundary in the Range header.",
  );
});

Deno.test("a negative limit is 416 PGRST103", async () => {
  const res = await rest(`${ITEMS}?limit=-1`);
  assert.equal(res.status, 416);
  assert.equal((await res.json()).details, "Limit should be greater than or equal to zero.");
});

Deno.test("count=planned and count=estimated give the planner's estimate past max_rows", async () => {
  const planned = await from("conformance_reads_many").select("id", { count: "planned" }).limit(1);
  assert.equal(planned.error, null);
  assert.equal(planned.status, 206);
  assert.equal(typeof planned.count, "number");
  assert.ok(planned.count > 1000, `planned count ${planned.count} is the planner's estimate of 1200 rows`);
  const estimated = await from("conformance_reads_many").select("id", { count: "estimated" }).limit(1);
  assert.ok(estimated.count >= 1001, `estimated count ${estimated.count}`);
  const small = await from(ITEMS).select("id", { count: "estimated" });
  assert.equal(small.count, 5, "under max_rows, estimated is exact");
});

Deno.test("max_rows (1000) caps a read; the exact count still counts every row", async () => {
  const { data, count, status } = await from("conformance_reads_many").select("id", { count: "exact" });
  assert.equal(data.length, 1000);
  assert.equal(count, 1200);
  assert.equal(status, 206);
  const limited = await from("conformance_reads_many").select("id").limit(5000);
  assert.equal(limited.data.length, 1000, "a limit above max_rows is capped too");
});

Deno.test("HEAD with count=exact answers the count and Content-Range, no body", async () => {
  const { data, error, count, status } = await from(ITEMS).select("*", { head: true, count: "exact" }).eq(
    "category",
    "tools",
  );
  assert.equal(error, null);
  assert.equal(data, null);
  assert.equal(count, 3);
  assert.equal(status, 200);
  const res = await rest(`${ITEMS}?category=eq.tools`, {
    method: "HEAD",
    headers: { prefer: "count=exact" },
  });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-range"), "0-2/3");
  assert.equal(await res.text(), "");
});

Deno.test(".single() returns one object; none or several rows is 406 PGRST116", async () => {
  const one = await from(ITEMS).select("name").eq("id", 4).single();
  assert.deepEqual(one.data, { name: "drill" });
  assert.equal(one.status, 200);
  const none = await from(ITEMS).select("name").eq("id", 99).single();
  assert.equal(none.status, 406);
  assert.deepEqual(none.error, {
    code: "PGRST116",
    details: "The result contains 0 rows",
    hint: null,
    message: "Cannot coerce the result to a single JSON object",
  });
  const many = await from(ITEMS).select("name").eq("category", "tools").single();
  assert.equal(many.status, 406);
  assert.equal(many.error.details, "The result contains 3 rows");
  const res = await rest(`${ITEMS}?id=eq.4&select=name`, {
    headers: { accept: "application/vnd.pgrst.object+json" },
  });
  assert.equal(res.headers.get("content-type"), "application/vnd.pgrst.object+json; charset=utf-8");
  await res.body?.cancel();
});

Deno.test(".maybeSingle() gives null for no row and the object for one", async () => {
  const none = await from(ITEMS).select("name").eq("id", 99).maybeSingle();
  assert.equal(none.error, null);
  assert.equal(none.data, null);
  const one = await from(ITEMS).select("name").eq("id", 1).maybeSingle();
  assert.deepEqual(one.data, { name: "anvil" });
});

Deno.test(".csv() answers text/csv with a header line and PostgreSQL's text for values", async () => {
  const { data, error } = await from(ITEMS).select("id, name, price, rating").order("id").limit(3).csv();
  assert.equal(error, null);
  assert.equal(data, "id,name,price,rating\n1,anvil,12.50,4\n2,brush,3.00,\n3,chisel,7.25,5");
  const res = await rest(`${ITEMS}?select=id,name&id=eq.1`, { headers: { accept: "text/csv" } });
  assert.equal(res.headers.get("content-type"), "text/csv; charset=utf-8");
  await res.body?.cancel();
});

Deno.test(".stripNulls() leaves null values out of the objects", async () => {
  const { data, error } = await from(ITEMS).select("id, rating").in("id", [2, 3]).order("id").stripNulls();
  assert.equal(error, null);
  assert.deepEqual(data, [{ id: 2 }, { id: 3, rating: 5 }]);
});

Deno.test("Prefer: timezone= renders timestamps in a zone PostgreSQL knows; another is ignored", async () => {
  const res = await rest(`${ITEMS}?select=created_at&id=eq.1`, {
    headers: { prefer: "timezone=America/Sao_Paulo" },
  });
  assert.deepEqual(await res.json(), [{ created_at: "2026-01-02T00:04:05-03:00" }]);
  assert.equal(res.headers.get("preference-applied"), "timezone=America/Sao_Paulo");
  const unknown = await rest(`${ITEMS}?select=created_at&id=eq.1`, {
    headers: { prefer: "timezone=Moon/Tycho" },
  });
  assert.deepEqual(await unknown.json(), [{ created_at: "2026-01-02T03:04:05+00:00" }]);
  assert.equal(unknown.headers.get("preference-applied"), null);
  const strict = await rest(ITEMS, { headers: { prefer: "handling=strict, timezone=Moon/Tycho" } });
  assert.equal(strict.status, 400);
  assert.equal((await strict.json()).details, "Invalid preferences: timezone=Moon/Tycho");
});

Deno.test("an Accept the Data API cannot produce is 406 PGRST107", async () => {
  const res = await rest(ITEMS, { headers: { accept: "application/xml" } });
  assert.equal(res.status, 406);
  assert.deepEqual(await res.json(), {
    code: "PGRST107",
    details: null,
    hint: null,
    message: "None of these media types are available: application/xml",
  });
});

Deno.test("a table that does not exist is 404 PGRST205 with a 'Perhaps you meant' hint", async () => {
  const { data, error, status } = await from("conformance_reads_itemz").select("*");
  assert.equal(data, null);
  assert.equal(status, 404);
  assert.deepEqual(error, {
    code: "PGRST205",
    details: null,
    hint: "Perhaps you meant the table 'public.conformance_reads_items'",
    message: "Could not find the table 'public.conformance_reads_itemz' in the schema cache",
  });
});

Deno.test("the product's reference tables are readable by anon; a user's own rows only by that user", async () => {
  const plans = await anonClient().from("subscription_plans").select("id, name").order("sort_order");
  assert.equal(plans.error, null);
  assert.deepEqual(plans.data?.map((p) => p.id), ["free", "pro", "max"]);
  const packs = await anonClient().from("token_packs").select("id, tokens").eq("is_active", true);
  assert.equal(packs.error, null);
  const user = await createTestUser(sql);
  try {
    const anonBalance = await anonClient().from("token_balances").select("balance");
    assert.equal(anonBalance.status, 401, "anon has no grant on token_balances: 42501 → 401");
    assert.equal(anonBalance.error?.code, "42501");
    const me = clientWithToken(await es256(userClaims(user.id)));
    const mine = await me.from("token_balances").select("user_id, balance, held");
    assert.equal(mine.error, null);
    assert.deepEqual(mine.data, [{ user_id: user.id, balance: 0, held: 0 }]);
    const all = await serviceClient().from("token_balances").select("user_id", {
      count: "exact",
      head: true,
    });
    assert.ok((all.count ?? 0) >= 1, "service_role bypasses RLS");
  } finally {
    await deleteTestUsers(sql, [user]);
  }
});

Deno.test("a request through the API URL without an apikey is refused by the gateway before the Data API", async () => {
  const res = await fetch(`${stack.apiUrl}/rest/v1/${ITEMS}`);
  assert.equal(res.status, 401);
  assert.deepEqual(await res.json(), { message: "No API key found in request" });
});

Deno.test("reads test teardown", async () => {
  await dropFixture(sql, FIXTURE);
  await sql.end();
});
