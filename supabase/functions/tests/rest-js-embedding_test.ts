// Resource embedding through foreign keys, as PostgREST resolves it: many-to-one (object), one-to-many (array),
// one-to-one, many-to-many through a junction, nested, !inner, hints, filters/order/limit on embeds, and the
// PGRST200/201/108/118 errors.
import assert from "node:assert/strict";
import { createTestUser, deleteTestUsers, testSql, type TestUser } from "./_lib/db.ts";
import { anon, dropFixtures, installFixtures } from "./_lib/rest-conformance.ts";
import { anonClient, clientWithToken } from "./_lib/supabase.ts";
import { es256, userClaims } from "./_lib/tokens.ts";

const sql = testSql(2);
const users: TestUser[] = [];
await installFixtures(sql);

const items = () => anon().from("conformance_works");

Deno.test("a many-to-one embed is an object (null without a row), picked by a column or constraint hint", async () => {
  const { data, error } = await items()
    .select(
      "id, author:conformance_writers!author_id(name), editor:conformance_writers!conformance_works_editor_id_fkey(name)",
    )
    .in("id", [1, 4])
    .order("id");
  assert.equal(error, null);
  assert.deepEqual(data, [
    { id: 1, author: { name: "Ursula K. Le Guin" }, editor: { name: "Stanisław Lem" } },
    { id: 4, author: { name: "Stanisław Lem" }, editor: null },
  ]);
});

Deno.test("two foreign keys to one table make a bare embed ambiguous: 300 PGRST201 listing both", async () => {
  const { error, status, data } = await items().select("id, conformance_writers(name)");
  assert.equal(status, 300);
  assert.equal(data, null);
  assert.deepEqual(error, {
    code: "PGRST201",
    details: [
      {
        cardinality: "many-to-one",
        embedding: "conformance_works with conformance_writers",
        relationship:
          "conformance_works_author_id_fkey using conformance_works(author_id) and conformance_writers(id)",
      },
      {
        cardinality: "many-to-one",
        embedding: "conformance_works with conformance_writers",
        relationship:
          "conformance_works_editor_id_fkey using conformance_works(editor_id) and conformance_writers(id)",
      },
    ],
    hint:
      "Try changing 'conformance_writers' to one of the following: 'conformance_writers!conformance_works_author_id_fkey', 'conformance_writers!conformance_works_editor_id_fkey'. Find the desired relationship in the 'details' key.",
    message:
      "Could not embed because more than one relationship was found for 'conformance_works' and 'conformance_writers'",
  });
});

Deno.test("a one-to-many embed is an array (empty without rows), ordered inside with referencedTable", async () => {
  const { data, error } = await items()
    .select("id, conformance_critiques(stars)")
    .in("id", [1, 2])
    .order("id")
    .order("stars", { referencedTable: "conformance_critiques", ascending: false });
  assert.equal(error, null);
  assert.deepEqual(data, [
    { id: 1, conformance_critiques: [{ stars: 5 }, { stars: 4 }, { stars: 3 }] },
    { id: 2, conformance_critiques: [] },
  ]);
});

Deno.test("embeds nest, with aliases: an author's books and each book's reviews", async () => {
  const { data, error } = await anon()
    .from("conformance_writers")
    .select("name, books:conformance_works!author_id(title, conformance_critiques(reviewer))")
    .eq("id", 2)
    .order("id", { referencedTable: "books" });
  assert.equal(error, null);
  assert.deepEqual(data, [
    {
      name: "Stanisław Lem",
      books: [
        { title: "Solaris", conformance_critiques: [{ reviewer: "ana" }] },
        { title: "The Cyberiad", conformance_critiques: [] },
      ],
    },
  ]);
});

Deno.test("a one-to-one embed (the primary key is the foreign key) is an object in both directions", async () => {
  const forward = await items().select("id, conformance_work_details(isbn)").in("id", [1, 2]).order("id");
  assert.deepEqual(forward.data, [
    { id: 1, conformance_work_details: { isbn: "978-0061054884" } },
    { id: 2, conformance_work_details: null },
  ]);
  const back = await anon().from("conformance_work_details").select("isbn, conformance_works(title)").eq(
    "item_id",
    3,
  );
  assert.deepEqual(back.data, [{ isbn: "978-0156027601", conformance_works: { title: "Solaris" } }]);
});

Deno.test("a many-to-many embed goes through the junction table", async () => {
  const { data, error } = await items()
    .select("id, conformance_labels(label)")
    .in("id", [1, 2])
    .order("id")
    .order("label", { referencedTable: "conformance_labels" });
  assert.equal(error, null);
  assert.deepEqual(data, [
    { id: 1, conformance_labels: [{ label: "award" }, { label: "classic" }] },
    { id: 2, conformance_labels: [] },
  ]);
});

Deno.test("!inner keeps only the parents with a matching embedded row (and counts them)", async () => {
  const { data, count, error } = await items()
    .select("id, conformance_critiques!inner(reviewer)", { count: "exact" })
    .eq("conformance_critiques.reviewer", "ana")
    .order("id");
  assert.equal(error, null);
  assert.equal(count, 2);
  assert.deepEqual(data, [
    { id: 1, conformance_critiques: [{ reviewer: "ana" }] },
    { id: 3, conformance_critiques: [{ reviewer: "ana" }] },
  ]);
});

Deno.test("a filter on an embed without !inner filters the embedded rows, not the parents", async () => {
  const { data } = await items()
    .select("id, conformance_critiques(reviewer)")
    .eq("conformance_critiques.reviewer", "ana")
    .in("id", [1, 2])
    .order("id");
  assert.deepEqual(data, [
    { id: 1, conformance_critiques: [{ reviewer: "ana" }] },
    { id: 2, conformance_critiques: [] },
  ]);
});

Deno.test("an embed takes or=, order and limit of its own (referencedTable)", async () => {
  const { data, error } = await items()
    .select("id, conformance_critiques(stars)")
    .eq("id", 1)
    .or("stars.eq.5,stars.eq.3", { referencedTable: "conformance_critiques" })
    .order("stars", { referencedTable: "conformance_critiques" })
    .limit(1, { referencedTable: "conformance_critiques" });
  assert.equal(error, null);
  assert.deepEqual(data, [{ id: 1, conformance_critiques: [{ stars: 3 }] }]);
});

Deno.test("parents can be ordered by a column of a to-one embed: order=author(name)", async () => {
  const { data, error } = await items()
    .select("id, author:conformance_writers!author_id(name)")
    .order("author(name)")
    .order("id");
  assert.equal(error, null);
  assert.deepEqual(data?.map((r) => r.id), [5, 6, 3, 4, 1, 2]);
});

Deno.test("ordering parents by a to-many embed is 400 PGRST118", async () => {
  const { error, status } = await items().select("id, conformance_critiques(stars)").order(
    "conformance_critiques(stars)",
  );
  assert.equal(status, 400);
  assert.deepEqual(error, {
    code: "PGRST118",
    details:
      "'conformance_works' and 'conformance_critiques' do not form a many-to-one or one-to-one relationship",
    hint: null,
    message: "A related order on 'conformance_critiques' is not possible",
  });
});

Deno.test("a filter on a resource that is not embedded is 400 PGRST108", async () => {
  const { error, status } = await items().select("id").eq("conformance_critiques.stars", 5);
  assert.equal(status, 400);
  assert.deepEqual(error, {
    code: "PGRST108",
    details: null,
    hint: "Verify that 'conformance_critiques' is included in the 'select' query parameter.",
    message: "'conformance_critiques' is not an embedded resource in this request",
  });
});

Deno.test("no relationship is 400 PGRST200, with PostgREST's suggestion or the hint that was tried", async () => {
  const typo = await items().select("id, conformance_critiquez(*)");
  assert.equal(typo.status, 400);
  assert.deepEqual(typo.error, {
    code: "PGRST200",
    details:
      "Searched for a foreign key relationship between 'conformance_works' and 'conformance_critiquez' in the schema 'public', but no matches were found.",
    hint: "Perhaps you meant 'conformance_critiques' instead of 'conformance_critiquez'.",
    message:
      "Could not find a relationship between 'conformance_works' and 'conformance_critiquez' in the schema cache",
  });
  const badHint = await items().select("id, conformance_critiques!nope(*)");
  assert.equal(badHint.status, 400);
  assert.equal(badHint.error?.code, "PGRST200");
  assert.equal(
    badHint.error?.details,
    "Searched for a foreign key relationship between 'conformance_works' and 'conformance_critiques' using the hint 'nope' in the schema 'public', but no matches were found.",
  );
  assert.equal(badHint.error?.hint, null);
});

Deno.test("is null / not is null on an embed filter the parents by whether the embed has a row", async () => {
  const withDetails = await items().select("id, conformance_work_details(isbn)").not(
    "conformance_work_details",
    "is",
    null,
  ).order("id");
  assert.deepEqual(withDetails.data?.map((r) => r.id), [1, 3]);
  const without = await items().select("id, conformance_critiques(stars)").is("conformance_critiques", null)
    .order("id");
  assert.deepEqual(without.data?.map((r) => r.id), [2, 4, 6]);
});

Deno.test("an empty embed () filters through the relationship without being returned", async () => {
  const { data, error } = await items().select("id, conformance_critiques!inner()").eq(
    "conformance_critiques.stars",
    2,
  );
  assert.equal(error, null);
  assert.deepEqual(data, [{ id: 5 }]);
});

Deno.test("product: a user's account embeds their profile, settings, balance (one-to-one) and plan", async () => {
  const user = await createTestUser(sql);
  users.push(user);
  const client = clientWithToken(await es256(userClaims(user.id, user.email)));
  const { data, error } = await client
    .from("users")
    .select(
      "id, user_profiles(display_name), user_settings(theme, locale), token_balances(balance), subscription_plans(id)",
    )
    .single();
  assert.equal(error, null);
  assert.deepEqual(data, {
    id: user.id,
    user_profiles: { display_name: null },
    user_settings: { theme: "system", locale: "en" },
    token_balances: { balance: 0 },
    subscription_plans: { id: "free" },
  });
});

Deno.test("product: embedding a table the role may not read is refused by PostgreSQL (42501)", async () => {
  const { error, status } = await anonClient().from("subscription_plans").select("id, users(id)");
  assert.equal(status, 401);
  assert.equal(error?.code, "42501");
  assert.equal(error?.message, "permission denied for table users");
});

Deno.test("a to-one embed spreads into its parent's fields (...)", async () => {
  const { data, error } = await items().select(
    "id, ...conformance_writers!author_id(author_name:name, country)",
  ).eq(
    "id",
    3,
  );
  assert.equal(error, null);
  assert.deepEqual(data, [{ id: 3, author_name: "Stanisław Lem", country: "PL" }]);
});

Deno.test("filters reach an embed by its alias, and nested embeds by their path", async () => {
  const byAlias = await items().select("id, author:conformance_writers!author_id!inner(name)").eq(
    "author.country",
    "PL",
  ).order("id");
  assert.equal(byAlias.error, null);
  assert.deepEqual(byAlias.data?.map((r) => r.id), [3, 4]);
  const nested = await anon()
    .from("conformance_writers")
    .select("id, books:conformance_works!author_id!inner(title, conformance_critiques!inner(stars))")
    .eq("books.conformance_critiques.stars", 5)
    .order("id");
  assert.equal(nested.error, null);
  assert.deepEqual(nested.data, [
    { id: 1, books: [{ title: "The Dispossessed", conformance_critiques: [{ stars: 5 }] }] },
    { id: 2, books: [{ title: "Solaris", conformance_critiques: [{ stars: 5 }] }] },
  ]);
});

Deno.test("an embed pages with range() of its own (offset and limit)", async () => {
  const { data } = await items()
    .select("id, conformance_critiques(stars)")
    .eq("id", 1)
    .order("stars", { referencedTable: "conformance_critiques", ascending: false })
    .range(1, 1, { referencedTable: "conformance_critiques" });
  assert.deepEqual(data, [{ id: 1, conformance_critiques: [{ stars: 4 }] }]);
});

Deno.test("rest embedding teardown", async () => {
  await deleteTestUsers(sql, users);
  await dropFixtures(sql);
  await sql.end();
});
