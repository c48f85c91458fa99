// Embedding through foreign keys, through supabase-js against the Data API stand-in (/rest/v1): many-to-one
// (an object), one-to-many (an array), one-to-one, many-to-many through a junction, nested levels, !inner,
// disambiguation by constraint or column, aliases, spreads, filters/order/limit on embedded levels, ordering by a
// to-one embed, and PostgREST's PGRST200/PGRST201/PGRST108/PGRST118 when an embed is wrong.
import assert from "node:assert/strict";
import { testSql } from "./_lib/db.ts";
import { createFixture, dropFixture, type Fixture } from "./_lib/rest-fixtures.ts";
import { anonClient } from "./_lib/supabase.ts";

const sql = testSql(2);
const db = anonClient();
// deno-lint-ignore no-explicit-any
const from = (table: string) => (db as any).from(table);

const FIXTURE: Fixture = {
  tables: [
    "conformance_authors",
    "conformance_author_profiles",
    "conformance_books",
    "conformance_reviews",
    "conformance_genres",
    "conformance_book_genres",
  ],
  probe: "conformance_book_genres?limit=0",
  ddl: `
    create table public.conformance_authors (id int primary key, name text not null, country text);
    create table public.conformance_author_profiles (
      author_id int primary key references public.conformance_authors (id), bio text);
    create table public.conformance_books (
      id int primary key,
      title text not null,
      author_id int not null constraint conformance_books_author_fkey references public.conformance_authors (id),
      editor_id int constraint conformance_books_editor_fkey references public.conformance_authors (id),
      year int);
    create table public.conformance_reviews (
      id int primary key, book_id int not null references public.conformance_books (id), stars int not null, body text);
    create table public.conformance_genres (id int primary key, name text not null);
    create table public.conformance_book_genres (
      book_id int references public.conformance_books (id),
      genre_id int references public.conformance_genres (id),
      primary key (book_id, genre_id));
    insert into public.conformance_authors values (1, 'Ursula', 'US'), (2, 'Stanislaw', 'PL'), (3, 'Octavia', 'US'),
      (4, 'Nobody', null);
    insert into public.conformance_author_profiles values (1, 'Earthsea'), (2, 'Solaris');
    insert into public.conformance_books values (10, 'A Wizard of Earthsea', 1, 2, 1968),
      (11, 'The Dispossessed', 1, null, 1974), (12, 'Solaris', 2, 1, 1961), (13, 'Kindred', 3, 1, 1979);
    insert into public.conformance_reviews values (100, 10, 5, 'classic'), (101, 10, 4, 'good'), (102, 12, 3, 'odd'),
      (103, 13, 5, null);
    insert into public.conformance_genres values (1, 'fantasy'), (2, 'sf'), (3, 'literary');
    insert into public.conformance_book_genres values (10, 1), (11, 2), (11, 3), (12, 2), (13, 2);
    grant select on public.conformance_authors, public.conformance_author_profiles, public.conformance_books,
      public.conformance_reviews, public.conformance_genres, public.conformance_book_genres to anon, authenticated;`,
};

await createFixture(sql, FIXTURE);

Deno.test("a many-to-one embed is an object, picked by the foreign key column (!author_id)", async () => {
  const { data, error, status } = await from("conformance_books")
    .select("id, title, conformance_authors!author_id(name)").order("id").limit(2);
  assert.equal(error, null);
  assert.equal(status, 200);
  assert.deepEqual(data, [
    { id: 10, title: "A Wizard of Earthsea", conformance_authors: { name: "Ursula" } },
    { id: 11, title: "The Dispossessed", conformance_authors: { name: "Ursula" } },
  ]);
});

Deno.test("two foreign keys to the same table are ambiguous: 300 PGRST201 with both relationships and hints", async () => {
  const { data, error, status } = await from("conformance_books").select("id, conformance_authors(name)");
  assert.equal(data, null);
  assert.equal(status, 300);
  assert.equal(error.code, "PGRST201");
  assert.equal(
    error.message,
    "Could not embed because more than one relationship was found for 'conformance_books' and 'conformance_authors'",
  );
  assert.deepEqual(error.details, [
    {
      cardinality: "many-to-one",
      embedding: "conformance_books with conformance_authors",
      relationship:
        "conformance_books_author_fkey using conformance_books(author_id) and conformance_authors(id)",
    },
    {
      cardinality: "many-to-one",
      embedding: "conformance_books with conformance_authors",
      relationship:
        "conformance_books_editor_fkey using conformance_books(editor_id) and conformance_authors(id)",
    },
  ]);
  assert.equal(
    error.hint,
    "Try changing 'conformance_authors' to one of the following: 'conformance_authors!conformance_books_author_fkey', " +
      "'conformance_authors!conformance_books_editor_fkey'. Find the desired relationship in the 'details' key.",
  );
});

Deno.test("the constraint name disambiguates (!conformance_books_editor_fkey), and two embeds of one table get aliases", async () => {
  const { data, error } = await from("conformance_books")
    .select(
      "title, author:conformance_authors!conformance_books_author_fkey(name), editor:conformance_authors!conformance_books_editor_fkey(name)",
    )
    .eq("id", 10).single();
  assert.equal(error, null);
  assert.deepEqual(data, {
    title: "A Wizard of Earthsea",
    author: { name: "Ursula" },
    editor: { name: "Stanislaw" },
  });
});

Deno.test("a one-to-many embed is an array, empty when there are no rows, and levels nest", async () => {
  const { data, error } = await from("conformance_authors")
    .select("name, conformance_books!author_id(title, conformance_reviews(stars))").order("id");
  assert.equal(error, null);
  assert.deepEqual(data, [
    {
      name: "Ursula",
      conformance_books: [
        { title: "A Wizard of Earthsea", conformance_reviews: [{ stars: 5 }, { stars: 4 }] },
        { title: "The Dispossessed", conformance_reviews: [] },
      ],
    },
    { name: "Stanislaw", conformance_books: [{ title: "Solaris", conformance_reviews: [{ stars: 3 }] }] },
    { name: "Octavia", conformance_books: [{ title: "Kindred", conformance_reviews: [{ stars: 5 }] }] },
    { name: "Nobody", conformance_books: [] },
  ]);
});

Deno.test("a foreign key that is also the primary key makes a one-to-one embed: an object or null", async () => {
  const { data, error } = await from("conformance_authors").select("name, conformance_author_profiles(bio)")
    .order("id");
  assert.equal(error, null);
  assert.deepEqual(data, [
    { name: "Ursula", conformance_author_profiles: { bio: "Earthsea" } },
    { name: "Stanislaw", conformance_author_profiles: { bio: "Solaris" } },
    { name: "Octavia", conformance_author_profiles: null },
    { name: "Nobody", conformance_author_profiles: null },
  ]);
});

Deno.test("a junction table whose primary key holds both foreign keys makes a many-to-many embed", async () => {
  const { data, error } = await from("conformance_books").select("title, conformance_genres(name)").order(
    "id",
  );
  assert.equal(error, null);
  assert.deepEqual(data, [
    { title: "A Wizard of Earthsea", conformance_genres: [{ name: "fantasy" }] },
    { title: "The Dispossessed", conformance_genres: [{ name: "sf" }, { name: "literary" }] },
    { title: "Solaris", conformance_genres: [{ name: "sf" }] },
    { title: "Kindred", conformance_genres: [{ name: "sf" }] },
  ]);
});

Deno.test("!inner keeps only parents with a matching embedded row, and a filter on the embed applies to it", async () => {
  const { data, error, count } = await from("conformance_authors")
    .select("name, conformance_books!author_id!inner(title)", { count: "exact" })
    .eq("conformance_books.year", 1961);
  assert.equal(error, null);
  assert.deepEqual(data, [{ name: "Stanislaw", conformance_books: [{ title: "Solaris" }] }]);
  assert.equal(count, 1, "the count counts what !inner keeps");
});

Deno.test("without !inner, a filter on the embed narrows the embedded rows, not the parents", async () => {
  const { data, error } = await from("conformance_authors")
    .select("id, conformance_books!author_id(title)").gte("conformance_books.year", 1970).order("id");
  assert.equal(error, null);
  assert.deepEqual(data, [
    { id: 1, conformance_books: [{ title: "The Dispossessed" }] },
    { id: 2, conformance_books: [] },
    { id: 3, conformance_books: [{ title: "Kindred" }] },
    { id: 4, conformance_books: [] },
  ]);
});

Deno.test("order and limit apply to an embedded level (referencedTable, by alias)", async () => {
  const { data, error } = await from("conformance_authors")
    .select("name, books:conformance_books!author_id(title, year)")
    .order("year", { referencedTable: "books", ascending: false })
    .limit(1, { referencedTable: "books" })
    .eq("id", 1);
  assert.equal(error, null);
  assert.deepEqual(data, [{ name: "Ursula", books: [{ title: "The Dispossessed", year: 1974 }] }]);
});

Deno.test("order=embed(column) orders the parents by a column of a to-one embed", async () => {
  const { data, error } = await from("conformance_books")
    .select("title, writer:conformance_authors!author_id(name)")
    .order("writer(name)", { ascending: true }).order("title");
  assert.equal(error, null);
  assert.deepEqual(
    data.map((b: { writer: { name: string }; title: string }) => `${b.writer.name}: ${b.title}`),
    [
      "Octavia: Kindred",
      "Stanislaw: Solaris",
      "Ursula: A Wizard of Earthsea",
      "Ursula: The Dispossessed",
    ],
  );
});

Deno.test("ordering by a to-many embed is 400 PGRST118", async () => {
  const { error, status } = await from("conformance_authors")
    .select("name, conformance_books!author_id(title)").order("conformance_books(title)");
  assert.equal(status, 400);
  assert.equal(error.code, "PGRST118");
  assert.equal(error.message, "A related order on 'conformance_books' is not possible");
  assert.equal(
    error.details,
    "'conformance_authors' and 'conformance_books' do not form a many-to-one or one-to-one relationship",
  );
});

Deno.test("a filter on a resource that is not embedded is 400 PGRST108 with PostgREST's hint", async () => {
  const { error, status } = await from("conformance_authors").select("name").eq(
    "conformance_books.year",
    1961,
  );
  assert.equal(status, 400);
  assert.deepEqual(error, {
    code: "PGRST108",
    details: null,
    hint: "Verify that 'conformance_books' is included in the 'select' query parameter.",
    message: "'conformance_books' is not an embedded resource in this request",
  });
});

Deno.test("an embed with nothing selected filters only: not.is.null keeps parents that have one", async () => {
  const { data, error } = await from("conformance_authors")
    .select("name, conformance_author_profiles()").not("conformance_author_profiles", "is", null).order("id");
  assert.equal(error, null);
  assert.deepEqual(data, [{ name: "Ursula" }, { name: "Stanislaw" }]);
  const none = await from("conformance_authors")
    .select("name, conformance_books!author_id()").is("conformance_books", null);
  assert.deepEqual(none.data, [{ name: "Nobody" }]);
});

Deno.test("a to-one spread (...embed) puts the embedded columns into the parent object", async () => {
  const { data, error } = await from("conformance_books")
    .select("title, ...conformance_authors!author_id(author:name, country)").order("id").limit(2);
  assert.equal(error, null);
  assert.deepEqual(data, [
    { title: "A Wizard of Earthsea", author: "Ursula", country: "US" },
    { title: "The Dispossessed", author: "Ursula", country: "US" },
  ]);
});

Deno.test("an embed the schema has no relationship for is 400 PGRST200 with a 'Perhaps you meant' hint", async () => {
  const { data, error, status } = await from("conformance_books").select("title, conformance_author(name)");
  assert.equal(data, null);
  assert.equal(status, 400);
  assert.deepEqual(error, {
    code: "PGRST200",
    details:
      "Searched for a foreign key relationship between 'conformance_books' and 'conformance_author' in the " +
      "schema 'public', but no matches were found.",
    hint: "Perhaps you meant 'conformance_authors' instead of 'conformance_author'.",
    message:
      "Could not find a relationship between 'conformance_books' and 'conformance_author' in the schema cache",
  });
});

Deno.test("a hint that matches no relationship is PGRST200 naming the hint", async () => {
  const { error, status } = await from("conformance_books").select(
    "title, conformance_authors!no_such_fkey(name)",
  );
  assert.equal(status, 400);
  assert.equal(error.code, "PGRST200");
  assert.equal(
    error.details,
    "Searched for a foreign key relationship between 'conformance_books' and 'conformance_authors' using the hint " +
      "'no_such_fkey' in the schema 'public', but no matches were found.",
  );
});

Deno.test("an unknown column inside an embed is 400 42703 named after the embedded level", async () => {
  const { error, status } = await from("conformance_books").select("title, conformance_reviews(nope)");
  assert.equal(status, 400);
  assert.equal(error.code, "42703");
  assert.equal(error.message, "column conformance_reviews_1.nope does not exist");
});

Deno.test("the product's tables embed too: a user's profile and settings are one-to-one objects, under RLS", async () => {
  const { createTestUser, deleteTestUsers } = await import("./_lib/db.ts");
  const { clientWithToken } = await import("./_lib/supabase.ts");
  const { es256, userClaims } = await import("./_lib/tokens.ts");
  const user = await createTestUser(sql);
  try {
    const me = clientWithToken(await es256(userClaims(user.id)));
    const { data, error } = await me.from("users")
      .select("id, plan, user_profiles(display_name), user_settings(theme, locale), subscription_plans(name)")
      .single();
    assert.equal(error, null);
    assert.deepEqual(data, {
      id: user.id,
      plan: "free",
      user_profiles: { display_name: null },
      user_settings: { theme: "system", locale: "en" },
      subscription_plans: { name: "Free" },
    });
    const other = await createTestUser(sql);
    try {
      const { data: theirs } = await me.from("user_profiles").select("user_id").eq("user_id", other.id);
      assert.deepEqual(theirs, [], "RLS hides another user's profile");
    } finally {
      await deleteTestUsers(sql, [other]);
    }
  } finally {
    await deleteTestUsers(sql, [user]);
  }
});

Deno.test("embedding test teardown", async () => {
  await dropFixture(sql, FIXTURE);
  await sql.end();
});
