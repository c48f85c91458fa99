// Writes as PostgREST performs them: insert (one object, arrays, columns=, missing=default), upsert
// (merge/ignore duplicates, on_conflict), update and delete with filters, Prefer: return=…, single-row checks
// that roll back, RLS violations, and the errors of bad bodies and constraints.
import assert from "node:assert/strict";
import { createTestUser, deleteTestUsers, testSql, type TestUser } from "./_lib/db.ts";
import { anon, asService, asUser, dropFixtures, installFixtures, rest } from "./_lib/rest-conformance.ts";
import { clientWithToken, serviceClient } from "./_lib/supabase.ts";
import { stack } from "./_lib/stack.ts";
import { es256, userClaims } from "./_lib/tokens.ts";

const sql = testSql(2);
const users: TestUser[] = [];
await installFixtures(sql);

const upserts = () => anon().from("conformance_keyed");
/** The rows as they are in the table (plain objects, read as superuser). */
const rowsOf = async (ids: number[]) =>
  [...await sql`select id, code, name, hits, note from public.conformance_keyed where id = any(${ids}) order by id`]
    .map((r) => ({ ...r }));

Deno.test("insert without select answers 201 with no body (return=minimal)", async () => {
  const { data, error, status } = await upserts().insert({ id: 10, code: "j", name: "ten" });
  assert.deepEqual([data, error, status], [null, null, 201]);
  assert.deepEqual(await rowsOf([10]), [{ id: 10, code: "j", name: "ten", hits: 0, note: "from default" }]);
});

Deno.test("insert().select() returns the inserted rows (return=representation), shaped by select", async () => {
  const { data, error, status } = await upserts().insert({ id: 11, code: "k" }).select(
    "id, label:code, note",
  );
  assert.equal(error, null);
  assert.equal(status, 201);
  assert.deepEqual(data, [{ id: 11, label: "k", note: "from default" }]);
});

Deno.test("an array of rows is inserted at once; rows missing a key get null (missing=null)", async () => {
  const { data, error } = await upserts()
    .insert([{ id: 12, code: "l", note: "given" }, { id: 13, code: "m" }])
    .select("id, note")
    .order("id");
  assert.equal(error, null);
  assert.deepEqual(data, [{ id: 12, note: "given" }, { id: 13, note: null }]);
});

Deno.test("defaultToNull: false sends missing=default: a missing key takes the column default", async () => {
  const { data, error } = await upserts()
    .insert([{ id: 14, code: "n", note: "given" }, { id: 15, code: "o" }], { defaultToNull: false })
    .select("id, note, hits")
    .order("id");
  assert.equal(error, null);
  assert.deepEqual(data, [{ id: 14, note: "given", hits: 0 }, { id: 15, note: "from default", hits: 0 }]);
});

Deno.test("upsert merges on the primary key: existing rows updated, new ones inserted (201)", async () => {
  await sql`insert into public.conformance_keyed (id, code, name) values (20, 'u20', 'old')`;
  const { data, error, status } = await upserts()
    .upsert([{ id: 20, code: "u20", name: "new" }, { id: 21, code: "u21", name: "fresh" }])
    .select("id, name")
    .order("id");
  assert.equal(error, null);
  assert.equal(status, 201);
  assert.deepEqual(data, [{ id: 20, name: "new" }, { id: 21, name: "fresh" }]);
  const onlyUpdates = await upserts().upsert({ id: 20, code: "u20", name: "newer" }).select("name");
  assert.equal(onlyUpdates.status, 200, "nothing inserted: 200");
  assert.deepEqual(onlyUpdates.data, [{ name: "newer" }]);
});

Deno.test("upsert onConflict targets a unique column other than the key", async () => {
  await sql`insert into public.conformance_keyed (id, code, name) values (22, 'u22', 'old')`;
  const { data, error } = await upserts().upsert({ id: 22, code: "u22", name: "by code" }, {
    onConflict: "code",
  })
    .select("id, name");
  assert.equal(error, null);
  assert.deepEqual(data, [{ id: 22, name: "by code" }]);
});

Deno.test("upsert with ignoreDuplicates keeps existing rows and returns only the inserted ones", async () => {
  await sql`insert into public.conformance_keyed (id, code, name) values (23, 'u23', 'kept')`;
  const { data, error } = await upserts()
    .upsert([{ id: 23, code: "u23", name: "ignored" }, { id: 24, code: "u24", name: "added" }], {
      ignoreDuplicates: true,
    })
    .select("id, name");
  assert.equal(error, null);
  assert.deepEqual(data, [{ id: 24, name: "added" }]);
  assert.deepEqual((await rowsOf([23]))[0].name, "kept");
});

Deno.test("update changes the filtered rows: 204 without select, the rows with it", async () => {
  await sql`insert into public.conformance_keyed (id, code, name) values (30, 'u30', 'a'), (31, 'u31', 'a'), (32, 'u32', 'b')`;
  const minimal = await upserts().update({ hits: 5 }).eq("name", "a").gte("id", 30);
  assert.deepEqual([minimal.data, minimal.error, minimal.status], [null, null, 204]);
  const { data, count, status } = await upserts().update({ name: "c" }, { count: "exact" }).in("id", [30, 31])
    .select(
      "id, name, hits",
    ).order("id");
  assert.equal(status, 200);
  assert.equal(count, 2);
  assert.deepEqual(data, [{ id: 30, name: "c", hits: 5 }, { id: 31, name: "c", hits: 5 }]);
  assert.deepEqual((await rowsOf([32]))[0].hits, 0);
});

Deno.test("delete removes the filtered rows and can return them", async () => {
  await sql`insert into public.conformance_keyed (id, code) values (40, 'u40'), (41, 'u41'), (42, 'u42')`;
  const gone = await upserts().delete({ count: "exact" }).in("id", [40, 41]).select("id").order("id");
  assert.equal(gone.status, 200);
  assert.equal(gone.count, 2);
  assert.deepEqual(gone.data, [{ id: 40 }, { id: 41 }]);
  const minimal = await upserts().delete().eq("id", 42);
  assert.deepEqual([minimal.data, minimal.status], [null, 204]);
  assert.deepEqual(await rowsOf([40, 41, 42]), []);
});

Deno.test("return=headers-only answers the new row's Location", async () => {
  const res = await rest("/conformance_keyed", {
    method: "POST",
    headers: { "content-type": "application/json", prefer: "return=headers-only" },
    body: JSON.stringify({ id: 50, code: "u50" }),
  });
  assert.equal(res.status, 201);
  assert.equal(await res.text(), "");
  assert.equal(res.headers.get("location"), "/conformance_keyed?id=eq.50");
  assert.equal(res.headers.get("preference-applied"), "return=headers-only");
});

Deno.test("insert().select().single() of two rows is PGRST116 and inserts nothing (rolled back)", async () => {
  const { error, status } = await upserts().insert([{ id: 60, code: "u60" }, { id: 61, code: "u61" }])
    .select()
    .single();
  assert.equal(status, 406);
  assert.equal(error?.code, "PGRST116");
  assert.equal(error?.details, "The result contains 2 rows");
  assert.deepEqual(await rowsOf([60, 61]), []);
});

Deno.test("an unknown column is 400 PGRST204 and nothing is written", async () => {
  const { error, status } = await upserts().insert({ id: 70, code: "u70", nope: 1 });
  assert.equal(status, 400);
  assert.deepEqual(error, {
    code: "PGRST204",
    details: null,
    hint: null,
    message: "Could not find the 'nope' column of 'conformance_keyed' in the schema cache",
  });
  assert.deepEqual(await rowsOf([70]), []);
});

Deno.test("a body that is not JSON, or objects with different keys, is 400 PGRST102", async () => {
  const bad = await rest("/conformance_keyed", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: "{not json",
  });
  assert.equal(bad.status, 400);
  assert.deepEqual(await bad.json(), {
    code: "PGRST102",
    details: null,
    hint: null,
    message: "Empty or invalid json",
  });
  const uneven = await rest("/conformance_keyed", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify([{ id: 71, code: "a" }, { id: 72 }]),
  });
  assert.equal(uneven.status, 400);
  assert.equal((await uneven.json()).message, "All object keys must match");
});

Deno.test("constraint violations: unique 409 23505, foreign key 409 23503, check 400 23514", async () => {
  const dup = await upserts().insert({ id: 1, code: "zz" });
  assert.equal(dup.status, 409);
  assert.deepEqual(dup.error, {
    code: "23505",
    // PostgreSQL leaves the key out of the detail when RLS applies to the role (BuildIndexValueDescription).
    details: null,
    hint: null,
    message: 'duplicate key value violates unique constraint "conformance_keyed_pkey"',
  });
  const fk = await anon().from("conformance_critiques").insert({ id: 90, item_id: 999, stars: 3 });
  assert.equal(fk.status, 409);
  assert.equal(fk.error?.code, "23503");
  const check = await anon().from("conformance_critiques").insert({ id: 91, item_id: 1, stars: 9 });
  assert.equal(check.status, 400);
  assert.equal(check.error?.code, "23514");
  assert.match(check.error!.message, /violates check constraint "stars_are_one_to_five"/);
});

Deno.test("RLS: a user inserts their own rows; another owner is 403 42501, anon is 401", async () => {
  const [a, b] = [await createTestUser(sql), await createTestUser(sql)];
  users.push(a, b);
  const client = asUser(await es256(userClaims(a.id)));
  const own = await client.from("conformance_memos").insert({ body: "mine" }).select("owner_id, body");
  assert.equal(own.error, null);
  assert.deepEqual(own.data, [{ owner_id: a.id, body: "mine" }]);
  const forged = await client.from("conformance_memos").insert({ owner_id: b.id, body: "theirs" });
  assert.equal(forged.status, 403);
  assert.deepEqual(forged.error, {
    code: "42501",
    details: null,
    hint: null,
    message: 'new row violates row-level security policy for table "conformance_memos"',
  });
  const stranger = await anon().from("conformance_memos").insert({ owner_id: a.id, body: "anon" });
  assert.equal(stranger.status, 401);
  assert.equal(stranger.error?.code, "42501");
  const visible = await asUser(await es256(userClaims(b.id))).from("conformance_memos").select("body");
  assert.deepEqual(visible.data, []);
});

Deno.test("Prefer: tx=rollback is ignored as on a hosted project (db-tx-end = commit)", async () => {
  const { error, status } = await upserts().insert({ id: 80, code: "u80" }).rollback();
  assert.deepEqual([error, status], [null, 201]);
  assert.equal((await rowsOf([80])).length, 1);
});

Deno.test("maxAffected() refuses an update touching more rows than allowed (PGRST124) and rolls back", async () => {
  await sql`insert into public.conformance_keyed (id, code, name) values (85, 'u85', 'm'), (86, 'u86', 'm')`;
  const { error, status } = await upserts().update({ hits: 9 }).eq("name", "m").maxAffected(1);
  assert.equal(status, 400);
  assert.deepEqual(error, {
    code: "PGRST124",
    details: "The query affects 2 rows",
    hint: null,
    message: "Query result exceeds max-affected preference constraint",
  });
  assert.deepEqual((await rowsOf([85, 86])).map((r) => r.hits), [0, 0]);
});

// ------------------------------------------------------------------------------- the product's tables
Deno.test("product: a user edits their own profile; a column they may not change is 403 42501", async () => {
  const user = await createTestUser(sql);
  users.push(user);
  const client = clientWithToken(await es256(userClaims(user.id)));
  const { data, error } = await client.from("user_profiles").update({ display_name: "Ada" }).eq(
    "user_id",
    user.id,
  )
    .select("display_name").single();
  assert.equal(error, null);
  assert.deepEqual(data, { display_name: "Ada" });
  const forbidden = await client.from("user_profiles").update({ created_at: "2000-01-01T00:00:00Z" }).eq(
    "user_id",
    user.id,
  );
  assert.equal(forbidden.status, 403);
  assert.equal(forbidden.error?.code, "42501");
  assert.equal(forbidden.error?.message, "permission denied for table user_profiles");
});

Deno.test("product: an update of someone else's row matches nothing under RLS (no error, no change)", async () => {
  const [a, b] = [await createTestUser(sql), await createTestUser(sql)];
  users.push(a, b);
  const client = clientWithToken(await es256(userClaims(a.id)));
  const { data, error } = await client.from("user_settings").update({ theme: "dark" }).eq("user_id", b.id)
    .select();
  assert.deepEqual([data, error], [[], null]);
  const [row] = await sql`select theme from public.user_settings where user_id = ${b.id}`;
  assert.equal(row.theme, "system");
});

Deno.test("product: the service role may not write balances directly (privilege revoked: 403 42501)", async () => {
  const user = await createTestUser(sql);
  users.push(user);
  const { error, status } = await serviceClient().from("token_balances").update({ balance: 1_000_000 }).eq(
    "user_id",
    user.id,
  );
  assert.equal(status, 403);
  assert.equal(error?.code, "42501");
  const [row] = await sql`select balance from public.token_balances where user_id = ${user.id}`;
  assert.equal(Number(row.balance), 0);
});

Deno.test("product: anon cannot mark notifications read (no grant: 401 42501)", async () => {
  const { status, error } = await asService().from("notifications").select("id").limit(1);
  assert.equal(error, null, "the service role reads notifications");
  assert.equal(status, 200);
  const res = await rest("/notifications?id=eq.00000000-0000-0000-0000-000000000000", {
    method: "PATCH",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ read_at: new Date().toISOString() }),
    token: stack.anonKey,
  });
  assert.equal(res.status, 401);
  assert.equal((await res.json()).code, "42501");
});

Deno.test("columns= limits an insert to the listed columns; other keys of the body are ignored", async () => {
  const res = await rest("/conformance_keyed?columns=id,code", {
    method: "POST",
    headers: { "content-type": "application/json", prefer: "return=representation" },
    body: JSON.stringify([{ id: 100, code: "c100", name: "ignored" }]),
  });
  assert.equal(res.status, 201);
  assert.deepEqual(await res.json(), [{ id: 100, code: "c100", name: null, hits: 0, note: "from default" }]);
});

Deno.test("the rows a write returns embed through their foreign keys (insert, update, delete)", async () => {
  const critiques = () => anon().from("conformance_critiques");
  const inserted = await critiques().insert({ id: 100, item_id: 3, stars: 4, reviewer: "dee" })
    .select("stars, conformance_works(title, author:conformance_writers!author_id(name))");
  assert.equal(inserted.error, null);
  assert.deepEqual(inserted.data, [
    { stars: 4, conformance_works: { title: "Solaris", author: { name: "Stanisław Lem" } } },
  ]);
  const updated = await critiques().update({ stars: 5 }).eq("id", 100).select(
    "id, stars, conformance_works(id)",
  );
  assert.deepEqual(updated.data, [{ id: 100, stars: 5, conformance_works: { id: 3 } }]);
  const deleted = await critiques().delete().eq("id", 100).select("id, conformance_works(title)");
  assert.deepEqual(deleted.data, [{ id: 100, conformance_works: { title: "Solaris" } }]);
});

Deno.test("a write to a schema that is not exposed (Content-Profile) is 406 PGRST106 and changes nothing", async () => {
  const { error, status } = await anon().schema("private").from("admin_alerts").insert({ kind: "x" });
  assert.equal(status, 406);
  assert.equal(error?.code, "PGRST106");
  assert.equal(error?.message, "Invalid schema: private");
});

Deno.test("rest writes teardown", async () => {
  await deleteTestUsers(sql, users);
  await dropFixtures(sql);
  await sql.end();
});
