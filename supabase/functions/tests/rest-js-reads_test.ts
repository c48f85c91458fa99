// The Data API stand-in answers reads as PostgREST does, driven by supabase-js (raw fetch only for what
// supabase-js cannot express: headers of a HEAD, the Range header, Content-Range itself).
import assert from "node:assert/strict";
import { createTestUser, deleteTestUsers, testSql, type TestUser } from "./_lib/db.ts";
import { anon, asService, asUser, dropFixtures, installFixtures, rest } from "./_lib/rest-conformance.ts";
import { anonClient, clientWithToken } from "./_lib/supabase.ts";
import { es256, userClaims } from "./_lib/tokens.ts";

const sql = testSql(2);
const users: TestUser[] = [];
await installFixtures(sql);

const items = () => anon().from("conformance_works");

Deno.test("select picks columns, renames them (alias:col) and casts them (col::text)", async () => {
  const { data, error, status } = await items().select("id, name:title, price::text").eq("id", 1);
  assert.equal(error, null);
  assert.equal(status, 200);
  assert.deepEqual(data, [{ id: 1, name: "The Dispossessed", price: "12.50" }]);
});

Deno.test("select * returns every column in table order, with JSON types as PostgreSQL renders them", async () => {
  const { data } = await items().select("*").eq("id", 4).single();
  assert.deepEqual(Object.keys(data), [
    "id",
    "title",
    "author_id",
    "editor_id",
    "price",
    "tags",
    "meta",
    "body",
    "search",
    "published_on",
    "status",
    "created_at",
  ]);
  assert.equal(data.price, null);
  assert.deepEqual(data.tags, ["robots", "humor"]);
  assert.deepEqual(data.meta, { pages: 295, lang: "pl", translated: true });
  assert.equal(data.published_on, "1965-01-01");
  assert.match(data.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+\+00:00$/);
});

Deno.test("JSON paths select nested values: -> keeps JSON, ->> gives text, named by the last key", async () => {
  const { data, error } = await items().select("id, meta->pages, lang:meta->>lang, meta->>translated").in(
    "id",
    [
      3,
      4,
    ],
  ).order("id");
  assert.equal(error, null);
  assert.deepEqual(data, [
    { id: 3, pages: 204, lang: "pl", translated: null },
    { id: 4, pages: 295, lang: "pl", translated: "true" },
  ]);
});

Deno.test("order sorts by several columns, descending with nulls first or last", async () => {
  const first = await items().select("id").order("price", { ascending: false, nullsFirst: true }).order("id");
  assert.deepEqual(first.data?.map((r) => r.id), [4, 6, 5, 1, 2, 3]);
  const last = await items().select("id").order("price", { ascending: false, nullsFirst: false });
  assert.deepEqual(last.data?.map((r) => r.id), [6, 5, 1, 2, 3, 4]);
  const two = await items().select("id").order("author_id", { ascending: false }).order("title");
  assert.deepEqual(two.data?.map((r) => r.id), [6, 5, 3, 4, 1, 2]);
});

Deno.test("limit and range() page through the rows (limit and offset)", async () => {
  const limited = await items().select("id").order("id").limit(2);
  assert.deepEqual(limited.data, [{ id: 1 }, { id: 2 }]);
  const page = await items().select("id").order("id").range(2, 4);
  assert.deepEqual(page.data, [{ id: 3 }, { id: 4 }, { id: 5 }]);
  const none = await items().select("id").order("id").limit(0);
  assert.deepEqual(none.data, []);
});

Deno.test("count=exact gives the total; a partial page is 206 with Content-Range lower-upper/total", async () => {
  const { data, count, status } = await items().select("id", { count: "exact" }).order("id").range(1, 2);
  assert.equal(count, 6);
  assert.equal(status, 206);
  assert.deepEqual(data, [{ id: 2 }, { id: 3 }]);
  const res = await rest("/conformance_works?select=id&order=id&offset=1&limit=2", {
    headers: { prefer: "count=exact" },
  });
  await res.body?.cancel();
  assert.equal(res.status, 206);
  assert.equal(res.headers.get("content-range"), "1-2/6");
  assert.equal(res.headers.get("preference-applied"), "count=exact");
  const all = await items().select("id", { count: "exact" });
  assert.equal(all.status, 200);
  assert.equal(all.count, 6);
});

Deno.test("without a count Content-Range is lower-upper/*, and */0 for no rows", async () => {
  const res = await rest("/conformance_works?select=id&order=id&limit=3");
  await res.body?.cancel();
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-range"), "0-2/*");
  const empty = await rest("/conformance_works?select=id&id=eq.999", { headers: { prefer: "count=exact" } });
  assert.deepEqual(await empty.json(), []);
  assert.equal(empty.status, 200);
  assert.equal(empty.headers.get("content-range"), "*/0");
  const { data, count, status } = await items().select("id", { count: "exact" }).eq("id", 999);
  assert.deepEqual([data, count, status], [[], 0, 200]);
});

Deno.test("count=planned and count=estimated give the planner's number", async () => {
  for (const count of ["planned", "estimated"] as const) {
    const res = await items().select("id", { count });
    assert.equal(res.error, null, count);
    assert.equal(typeof res.count, "number", count);
    assert.ok(res.count! >= 0, count);
  }
});

Deno.test("HEAD (head: true) answers the count and Content-Range without a body", async () => {
  const { data, count, status, error } = await items().select("*", { head: true, count: "exact" }).eq(
    "status",
    "published",
  );
  assert.deepEqual([data, count, status, error], [null, 4, 200, null]);
  const res = await rest("/conformance_works?status=eq.published", {
    method: "HEAD",
    headers: { prefer: "count=exact" },
  });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-range"), "0-3/4");
  assert.equal(await res.text(), "");
});

Deno.test("the Range header limits a GET; an inverted range is 416 PGRST103", async () => {
  const res = await rest("/conformance_works?select=id&order=id", {
    headers: { range: "1-2", "range-unit": "items" },
  });
  assert.deepEqual(await res.json(), [{ id: 2 }, { id: 3 }]);
  assert.equal(res.headers.get("content-range"), "1-2/*");
  const bad = await rest("/conformance_works?select=id", { headers: { range: "3-1" } });
  assert.equal(bad.status, 416);
  assert.deepEqual(await bad.json(), {
    code: "PGRST103",
    details: "The lower boundary must be lower than or equal to the upper boundary in the Range header.",
    hint: null,
    message: "Requested range not satisfiable",
  });
});

Deno.test("an offset past the end with count=exact is 416 with PostgREST's details", async () => {
  const { error, status, data } = await items().select("id", { count: "exact" }).range(10, 12);
  assert.equal(status, 416);
  assert.equal(data, null);
  assert.deepEqual(error, {
    code: "PGRST103",
    details: "An offset of 10 was requested, but there are only 6 rows.",
    hint: null,
    message: "Requested range not satisfiable",
  });
  const noCount = await items().select("id").range(10, 12);
  assert.deepEqual([noCount.status, noCount.data], [200, []]);
});

Deno.test("single() returns one object; no row or several rows are PGRST116 (406)", async () => {
  const one = await items().select("id, title").eq("id", 2).single();
  assert.deepEqual(one.data, { id: 2, title: "The Left Hand of Darkness" });
  const many = await items().select("id").eq("status", "published").single();
  assert.equal(many.status, 406);
  assert.deepEqual(many.error, {
    code: "PGRST116",
    details: "The result contains 4 rows",
    hint: null,
    message: "Cannot coerce the result to a single JSON object",
  });
  const none = await items().select("id").eq("id", 999).single();
  assert.equal(none.status, 406);
  assert.equal(none.error?.details, "The result contains 0 rows");
  const res = await rest("/conformance_works?id=eq.2&select=id", {
    headers: { accept: "application/vnd.pgrst.object+json" },
  });
  assert.equal(res.headers.get("content-type"), "application/vnd.pgrst.object+json; charset=utf-8");
  assert.deepEqual(await res.json(), { id: 2 });
});

Deno.test("maybeSingle() gives null for no row and the row for one", async () => {
  const none = await items().select("id").eq("id", 999).maybeSingle();
  assert.deepEqual([none.data, none.error], [null, null]);
  const one = await items().select("id").eq("id", 5).maybeSingle();
  assert.deepEqual(one.data, { id: 5 });
});

Deno.test("max_rows (config.toml) caps a read at 1000 rows; the count still says how many there are", async () => {
  const { data, count, status } = await anon().from("conformance_counted").select("n", { count: "exact" })
    .order("n");
  assert.equal(data?.length, 1000);
  assert.equal(count, 1100);
  assert.equal(status, 206);
  assert.deepEqual(data?.at(-1), { n: 1000 });
  const res = await rest("/conformance_counted?select=n&offset=1050", { headers: { prefer: "count=exact" } });
  assert.equal((await res.json()).length, 50);
  assert.equal(res.headers.get("content-range"), "1050-1099/1100");
});

Deno.test("csv() answers text/csv: a header line, then one line per row", async () => {
  const { data, error } = await items().select("id,title,price").in("id", [1, 6]).order("id").csv();
  assert.equal(error, null);
  assert.equal(
    data,
    'id,title,price\n1,"The Dispossessed",12.50\n6,"If on a winter\'s night a traveler",15.50',
  );
});

Deno.test("stripNulls() leaves out null fields (nulls=stripped)", async () => {
  const { data } = await items().select("id, body, published_on").eq("id", 5).stripNulls();
  assert.deepEqual(data, [{ id: 5 }]);
});

Deno.test("Accept-Profile picks an exposed schema; an unexposed one is 406 PGRST106", async () => {
  const ok = await anon().schema("public").from("conformance_writers").select("id").eq("id", 1);
  assert.deepEqual(ok.data, [{ id: 1 }]);
  const res = await rest("/conformance_writers?select=id&id=eq.1");
  await res.body?.cancel();
  assert.equal(res.headers.get("content-profile"), "public");
  const bad = await anon().schema("private").from("stripe_webhook_events").select("*");
  assert.equal(bad.status, 406);
  assert.deepEqual(bad.error, {
    code: "PGRST106",
    details: null,
    hint: "Only the following schemas are exposed: public, graphql_public",
    message: "Invalid schema: private",
  });
});

Deno.test("an unsupported Accept type is 406 PGRST107", async () => {
  const res = await rest("/conformance_works", { headers: { accept: "text/html" } });
  assert.equal(res.status, 406);
  assert.deepEqual(await res.json(), {
    code: "PGRST107",
    details: null,
    hint: null,
    message: "None of these media types are available: text/html",
  });
});

// ------------------------------------------------------------------------------- the product's tables
Deno.test("product: anon reads the active subscription plans and token packs (RLS is_active)", async () => {
  const plans = await anonClient().from("subscription_plans").select("id, is_active").order("sort_order");
  assert.equal(plans.error, null);
  assert.ok(plans.data!.length >= 1);
  assert.ok(plans.data!.every((p) => p.is_active));
  const packs = await anonClient().from("token_packs").select("id, is_active");
  assert.equal(packs.error, null);
  assert.ok(packs.data!.every((p) => p.is_active));
});

Deno.test("product: anon may not read accounts (42501, 401 for anon)", async () => {
  const { error, status } = await anonClient().from("users").select("id");
  assert.equal(status, 401);
  assert.equal(error?.code, "42501");
  assert.equal(error?.message, "permission denied for table users");
});

Deno.test("product: a signed-in user reads only their own account, profile and balance", async () => {
  const [a, b] = [await createTestUser(sql), await createTestUser(sql)];
  users.push(a, b);
  const client = clientWithToken(await es256(userClaims(a.id, a.email)));
  const accounts = await client.from("users").select("id, email, plan");
  assert.deepEqual(accounts.data, [{ id: a.id, email: a.email, plan: "free" }]);
  const other = await client.from("users").select("id").eq("id", b.id);
  assert.deepEqual(other.data, []);
  const balance = await client.from("token_balances").select("user_id, balance").single();
  assert.deepEqual(balance.data, { user_id: a.id, balance: 0 });
  const viaLoose = await asUser(await es256(userClaims(b.id))).from("user_settings").select("user_id, theme");
  assert.deepEqual(viaLoose.data, [{ user_id: b.id, theme: "system" }]);
});

Deno.test("product: the service role reads across users (bypasses RLS)", async () => {
  const user = await createTestUser(sql);
  users.push(user);
  const { data } = await asService().from("users").select("id").eq("id", user.id);
  assert.deepEqual(data, [{ id: user.id }]);
});

Deno.test("Prefer: timezone= renders timestamps in that zone and is echoed in Preference-Applied", async () => {
  const res = await rest("/conformance_works?select=created_at&id=eq.1", {
    headers: { prefer: "timezone=Asia/Kolkata" },
  });
  const [row] = await res.json();
  assert.match(row.created_at, /\+05:30$/);
  assert.equal(res.headers.get("preference-applied"), "timezone=Asia/Kolkata");
  const unknown = await rest("/conformance_works?select=created_at&id=eq.1", {
    headers: { prefer: "timezone=Mars/Olympus" },
  });
  const [utc] = await unknown.json();
  assert.match(utc.created_at, /\+00:00$/);
  assert.equal(unknown.headers.get("preference-applied"), null);
});

Deno.test("Prefer: handling=strict refuses a preference PostgREST does not know (400 PGRST122)", async () => {
  const res = await rest("/conformance_works?select=id", {
    headers: { prefer: "handling=strict, nonsense=1" },
  });
  assert.equal(res.status, 400);
  assert.deepEqual(await res.json(), {
    code: "PGRST122",
    details: "Invalid preferences: nonsense=1",
    hint: null,
    message: "Invalid preferences given with handling=strict",
  });
  const lenient = await rest("/conformance_works?select=id&id=eq.1", { headers: { prefer: "nonsense=1" } });
  assert.deepEqual(await lenient.json(), [{ id: 1 }]);
});

Deno.test("a view reads like a table, filters and all (security invoker: the table's RLS applies)", async () => {
  const { data, error } = await anon().from("conformance_published_works").select("id").gt("price", 10).order(
    "id",
  );
  assert.equal(error, null);
  assert.deepEqual(data, [{ id: 1 }, { id: 5 }]);
});

Deno.test("rest reads teardown", async () => {
  await deleteTestUsers(sql, users);
  await dropFixtures(sql);
  await sql.end();
});
