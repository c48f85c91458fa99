// Every filter supabase-js emits, answered as PostgREST answers it (values bound, operators from a fixed list).
import assert from "node:assert/strict";
import { testSql } from "./_lib/db.ts";
import { anon, dropFixtures, installFixtures, rest } from "./_lib/rest-conformance.ts";

const sql = testSql(2);
await installFixtures(sql);

const base = () => anon().from("conformance_works").select("id").order("id");
/** The ids the filtered query returns, in id order. */
async function ids(filter: (q: ReturnType<typeof base>) => ReturnType<typeof base>): Promise<number[]> {
  const { data, error } = await filter(base());
  assert.equal(error, null, JSON.stringify(error));
  return (data as { id: number }[]).map((r) => r.id);
}

Deno.test("eq, neq, gt, gte, lt, lte compare with the column's type", async () => {
  assert.deepEqual(await ids((q) => q.eq("author_id", 2)), [3, 4]);
  assert.deepEqual(await ids((q) => q.neq("status", "published")), [4, 6]);
  assert.deepEqual(await ids((q) => q.gt("price", 12.5)), [5, 6]);
  assert.deepEqual(await ids((q) => q.gte("price", 12.5)), [1, 5, 6]);
  assert.deepEqual(await ids((q) => q.lt("published_on", "1965-01-01")), [3]);
  assert.deepEqual(await ids((q) => q.lte("published_on", "1965-01-01")), [3, 4]);
});

Deno.test("like and ilike match patterns (% from supabase-js, * as PostgREST's wildcard)", async () => {
  assert.deepEqual(await ids((q) => q.like("title", "The %")), [1, 2, 4]);
  assert.deepEqual(await ids((q) => q.like("title", "the %")), []);
  assert.deepEqual(await ids((q) => q.ilike("title", "the %")), [1, 2, 4]);
  assert.deepEqual(await ids((q) => q.ilike("title", "*cities*")), [5]);
  assert.deepEqual(await ids((q) => q.likeAnyOf("title", ["Sol%", "%Cities"])), [3, 5]);
  assert.deepEqual(await ids((q) => q.ilikeAllOf("title", ["the%", "%ness"])), [2]);
});

Deno.test("match and imatch are POSIX regular expressions", async () => {
  assert.deepEqual(await ids((q) => q.filter("title", "match", "^The [CD]")), [1, 4]);
  assert.deepEqual(await ids((q) => q.filter("title", "imatch", "^the [cd]")), [1, 4]);
});

Deno.test("is null / not null / true / false, and isdistinct", async () => {
  assert.deepEqual(await ids((q) => q.is("price", null)), [4]);
  assert.deepEqual(await ids((q) => q.not("editor_id", "is", null)), [1, 2, 3, 6]);
  assert.deepEqual(await ids((q) => q.filter("body", "is", "not_null").lt("id", 4)), [1, 2, 3]);
  assert.deepEqual(await ids((q) => q.filter("editor_id", "isdistinct", "2")), [2, 3, 4, 5]);
});

Deno.test("in takes a list; values with commas or quotes are quoted by supabase-js", async () => {
  assert.deepEqual(await ids((q) => q.in("id", [5, 1, 3])), [1, 3, 5]);
  assert.deepEqual(await ids((q) => q.in("title", ["Solaris", "If on a winter's night a traveler"])), [3, 6]);
  assert.deepEqual(await ids((q) => q.not("status", "in", '("published","draft")')), [6]);
  assert.deepEqual(await ids((q) => q.in("id", [])), []);
});

Deno.test("cs, cd and ov test arrays (contains, contained by, overlaps)", async () => {
  assert.deepEqual(await ids((q) => q.contains("tags", ["sf"])), [1, 2, 3]);
  assert.deepEqual(await ids((q) => q.contains("tags", ["sf", "ocean"])), [3]);
  assert.deepEqual(await ids((q) => q.containedBy("tags", ["sf", "anarchy", "gender", "cities"])), [
    1,
    2,
    5,
    6,
  ]);
  assert.deepEqual(await ids((q) => q.overlaps("tags", ["humor", "cities"])), [4, 5]);
});

Deno.test("cs and cd test jsonb documents", async () => {
  assert.deepEqual(await ids((q) => q.contains("meta", { lang: "pl" })), [3, 4]);
  assert.deepEqual(await ids((q) => q.containedBy("meta", { pages: 165, lang: "it", extra: 1 })), [5, 6]);
});

Deno.test("filters on JSON paths compare the extracted value", async () => {
  assert.deepEqual(await ids((q) => q.eq("meta->>lang", "en")), [1, 2]);
  assert.deepEqual(await ids((q) => q.gt("meta->pages", 300)), [1, 2]);
});

Deno.test("fts, plfts, phfts and wfts search a tsvector column, with a text search config", async () => {
  assert.deepEqual(await ids((q) => q.textSearch("search", "planet & ocean")), [3]);
  assert.deepEqual(await ids((q) => q.textSearch("search", "planets", { config: "english" })), [2, 3]);
  assert.deepEqual(
    await ids((q) => q.textSearch("search", "robot constructors", { type: "plain", config: "english" })),
    [4],
  );
  assert.deepEqual(
    await ids((q) => q.textSearch("search", "ocean covers", { type: "phrase", config: "english" })),
    [3],
  );
  assert.deepEqual(
    await ids((q) => q.textSearch("search", '"winter" -novel', { type: "websearch", config: "english" })),
    [2],
  );
});

Deno.test("fts on a text column searches its to_tsvector", async () => {
  assert.deepEqual(await ids((q) => q.textSearch("body", "utopia", { config: "english" })), [1]);
});

Deno.test("not. negates any operator", async () => {
  assert.deepEqual(await ids((q) => q.not("title", "like", "The%")), [3, 5, 6]);
  assert.deepEqual(await ids((q) => q.not("tags", "cs", "{sf}")), [4, 5, 6]);
});

Deno.test("or and and combine conditions, nested", async () => {
  assert.deepEqual(await ids((q) => q.or("author_id.eq.3,price.lt.10")), [3, 5, 6]);
  assert.deepEqual(await ids((q) => q.or("status.eq.draft,and(author_id.eq.1,price.gt.11)")), [1, 4]);
  assert.deepEqual(await ids((q) => q.or("id.in.(1,2),tags.cs.{robots}").neq("id", 2)), [1, 4]);
  const not = await rest(
    "/conformance_works?select=id&order=id&not.or=(status.eq.published,status.eq.draft)",
  );
  assert.deepEqual(await not.json(), [{ id: 6 }]);
  const res = await rest(
    "/conformance_works?select=id&order=id&and=(author_id.eq.1,not.or(price.gt.11,body.is.null))",
  );
  assert.deepEqual(await res.json(), [{ id: 2 }]);
});

Deno.test("or accepts quoted values with commas and parentheses", async () => {
  assert.deepEqual(
    await ids((q) => q.or('title.eq."If on a winter\'s night a traveler",title.eq."Solaris"')),
    [3, 6],
  );
});

Deno.test("match() is one eq per column", async () => {
  assert.deepEqual(await ids((q) => q.match({ author_id: 1, status: "published" })), [1, 2]);
});

Deno.test("several filters on one column are all applied (AND)", async () => {
  assert.deepEqual(await ids((q) => q.gt("id", 1).lt("id", 4)), [2, 3]);
});

Deno.test("eq(any) and eq(all) quantifiers take an array", async () => {
  const res = await rest("/conformance_works?select=id&order=id&id=eq(any).{2,4}");
  assert.deepEqual(await res.json(), [{ id: 2 }, { id: 4 }]);
  const all = await rest("/conformance_works?select=id&order=id&title=like(all).{The*,*ness}");
  assert.deepEqual(await all.json(), [{ id: 2 }]);
});

Deno.test("filter values are bound, never spliced into SQL", async () => {
  const hostile = "1; drop table public.conformance_works; --";
  const { error, status } = await anon().from("conformance_works").select("id").eq("title", hostile);
  assert.deepEqual([error, status], [null, 200]);
  const typed = await anon().from("conformance_works").select("id").eq("id", hostile);
  assert.equal(typed.status, 400);
  assert.equal(typed.error?.code, "22P02");
  assert.equal(
    typed.error?.message,
    'invalid input syntax for type bigint: "1; drop table public.conformance_works; --"',
  );
  assert.deepEqual(await ids((q) => q.eq("id", 1)), [1]);
});

Deno.test("in() values with commas or parentheses are quoted by supabase-js and read back whole", async () => {
  assert.deepEqual(await ids((q) => q.in("title", ["Solaris", "A, B (c)"])), [3]);
});

Deno.test("rest filters teardown", async () => {
  await dropFixtures(sql);
  await sql.end();
});
