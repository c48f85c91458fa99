// The filters supabase-js emits, against the Data API stand-in: eq neq gt gte lt lte like ilike (with
// any/all) match imatch is isdistinct in cs cd ov, range operators, full-text search (fts plfts phfts wfts, with a
// config), not., or=/and= with nesting, match(), filters on JSON paths; and PGRST100 for what does not parse.
import assert from "node:assert/strict";
import { testSql } from "./_lib/db.ts";
import { createFixture, dropFixture, type Fixture, rest } from "./_lib/rest-fixtures.ts";
import { anonClient } from "./_lib/supabase.ts";

const sql = testSql(2);
const db = anonClient();
// deno-lint-ignore no-explicit-any
const docs = () => (db as any).from("conformance_filter_docs").select("id").order("id");
const ids = (r: { data: { id: number }[] | null; error: unknown }) => {
  assert.equal(r.error, null);
  return r.data!.map((x) => x.id);
};

const FIXTURE: Fixture = {
  tables: ["conformance_filter_docs"],
  probe: "conformance_filter_docs?limit=0",
  ddl: `
    create table public.conformance_filter_docs (
      id int primary key, title text not null, body text, n int, flag boolean, tags text[] not null default '{}',
      meta jsonb not null default '{}', span int4range,
      search tsvector generated always as (to_tsvector('english', title || ' ' || coalesce(body, ''))) stored);
    insert into public.conformance_filter_docs (id, title, body, n, flag, tags, meta, span) values
      (1, 'The quick brown fox', 'jumps over the lazy dog', 10, true, '{animals,classic}', '{"lang": "en", "stars": 5}', '[1,5)'),
      (2, 'Lorem ipsum', null, 20, false, '{latin}', '{"lang": "la"}', '[5,10)'),
      (3, 'Foxes and hounds', 'a hunting story', null, null, '{animals,hunting}', '{"lang": "en", "stars": 3}', '[20,30)'),
      (4, 'Cats (and dogs), too', 'pets: "house" animals', 40, true, '{}', '{}', null);
    grant select on public.conformance_filter_docs to anon, authenticated;`,
};

await createFixture(sql, FIXTURE);

Deno.test("eq, neq, gt, gte, lt, lte compare as the column's type", async () => {
  assert.deepEqual(ids(await docs().eq("n", 20)), [2]);
  assert.deepEqual(ids(await docs().neq("n", 20)), [1, 4], "neq leaves out nulls, as SQL does");
  assert.deepEqual(ids(await docs().gt("n", 10)), [2, 4]);
  assert.deepEqual(ids(await docs().gte("n", 20)), [2, 4]);
  assert.deepEqual(ids(await docs().lt("n", 20)), [1]);
  assert.deepEqual(ids(await docs().lte("n", 20)), [1, 2]);
});

Deno.test("like and ilike with * as the wildcard, and their any/all forms", async () => {
  assert.deepEqual(ids(await docs().like("title", "*Fox*")), [3], "like is case-sensitive");
  assert.deepEqual(ids(await docs().ilike("title", "*fox*")), [1, 3]);
  assert.deepEqual(ids(await docs().likeAnyOf("title", ["Lorem*", "Cats*"])), [2, 4]);
  assert.deepEqual(ids(await docs().ilikeAllOf("title", ["*o*", "*x*"])), [1, 3]);
});

Deno.test("match and imatch are regular expressions", async () => {
  assert.deepEqual(ids(await docs().regexMatch("title", "^F")), [3]);
  assert.deepEqual(ids(await docs().regexIMatch("title", "^f|^c")), [3, 4]);
});

Deno.test("is null / not null / true / false, and isdistinct", async () => {
  assert.deepEqual(ids(await docs().is("body", null)), [2]);
  assert.deepEqual(ids(await docs().not("body", "is", null)), [1, 3, 4]);
  assert.deepEqual(ids(await docs().is("flag", true)), [1, 4]);
  assert.deepEqual(ids(await docs().is("flag", false)), [2]);
  assert.deepEqual(ids(await docs().isDistinct("flag", true)), [2, 3], "null is distinct from true");
});

Deno.test("in takes a list; values with commas or parentheses are quoted", async () => {
  assert.deepEqual(ids(await docs().in("id", [1, 3, 99])), [1, 3]);
  assert.deepEqual(ids(await docs().in("title", ["Cats (and dogs), too", "Lorem ipsum"])), [2, 4]);
  assert.deepEqual(ids(await docs().not("id", "in", "(1,2)")), [3, 4]);
  assert.deepEqual(ids(await docs().in("id", [])), [], "an empty list matches nothing");
});

Deno.test("cs, cd and ov compare arrays; cs compares jsonb too", async () => {
  assert.deepEqual(ids(await docs().contains("tags", ["animals"])), [1, 3]);
  assert.deepEqual(ids(await docs().containedBy("tags", ["animals", "classic", "latin"])), [1, 2, 4]);
  assert.deepEqual(ids(await docs().overlaps("tags", ["latin", "hunting"])), [2, 3]);
  assert.deepEqual(ids(await docs().contains("meta", { lang: "en" })), [1, 3]);
});

Deno.test("range operators (sl, sr, nxl, nxr, adj, ov) compare ranges", async () => {
  assert.deepEqual(ids(await docs().rangeLt("span", "[10,20)")), [1, 2]);
  assert.deepEqual(ids(await docs().rangeGt("span", "[10,20)")), [3]);
  assert.deepEqual(ids(await docs().rangeAdjacent("span", "[10,20)")), [2, 3]);
  assert.deepEqual(ids(await docs().rangeGte("span", "[5,6)")), [2, 3]);
  assert.deepEqual(ids(await docs().rangeLte("span", "[1,6)")), [1]);
  assert.deepEqual(ids(await docs().overlaps("span", "[4,6)")), [1, 2]);
});

Deno.test("full-text search on a tsvector column (fts, plfts, phfts, wfts) and on text with a config", async () => {
  assert.deepEqual(ids(await docs().textSearch("search", "fox & dog")), [1]);
  assert.deepEqual(ids(await docs().textSearch("search", "fox", { type: "plain", config: "english" })), [
    1,
    3,
  ]);
  assert.deepEqual(ids(await docs().textSearch("search", "quick brown", { type: "phrase" })), [1]);
  assert.deepEqual(ids(await docs().textSearch("search", "fox -lazy", { type: "websearch" })), [3]);
  assert.deepEqual(
    ids(await docs().textSearch("title", "hound", { config: "english" })),
    [3],
    "text → to_tsvector",
  );
});

Deno.test("not. negates any operator", async () => {
  assert.deepEqual(ids(await docs().not("title", "ilike", "*fox*")), [2, 4]);
  assert.deepEqual(ids(await docs().not("tags", "cs", "{animals}")), [2, 4]);
});

Deno.test("or=() with nested and(), and not.or", async () => {
  assert.deepEqual(ids(await docs().or("n.eq.10,and(flag.is.null,title.ilike.*fox*)")), [1, 3]);
  assert.deepEqual(ids(await docs().or("id.in.(1,2),tags.cs.{hunting}")), [1, 2, 3]);
  const res = await rest(
    "conformance_filter_docs?select=id&and=(n.gte.10,or(flag.is.false,n.gt.30))&order=id",
  );
  assert.deepEqual(await res.json(), [{ id: 2 }, { id: 4 }]);
  const negated = await rest("conformance_filter_docs?select=id&not.or=(n.eq.10,n.eq.20)&order=id");
  assert.deepEqual(await negated.json(), [{ id: 4 }], "NOT (a OR b) leaves out nulls too");
});

Deno.test("match() ands equality filters; several filters on one column all apply", async () => {
  assert.deepEqual(ids(await docs().match({ flag: true, n: 40 })), [4]);
  assert.deepEqual(ids(await docs().gte("n", 10).lte("n", 20)), [1, 2]);
});

Deno.test("filters on JSON paths: ->> compares text, -> compares jsonb", async () => {
  assert.deepEqual(ids(await docs().eq("meta->>lang", "en")), [1, 3]);
  assert.deepEqual(ids(await docs().gt("meta->stars", 4)), [1]);
});

Deno.test("an unknown operator is 400 PGRST100 naming the filter", async () => {
  const res = await rest("conformance_filter_docs?n=foo.1");
  assert.equal(res.status, 400);
  const body = await res.json();
  assert.equal(body.code, "PGRST100");
  assert.match(body.message, /^"failed to parse filter \(foo\.1\)" \(line 1, column \d+\)$/);
  assert.match(body.details, /unexpected/);
  assert.equal(body.hint, null);
});

Deno.test("an unparsable select, order or logic tree is 400 PGRST100", async () => {
  for (const qs of ["select=id,(", "order=id.sideways", "or=(id.eq.1", "select=id&id=eq"]) {
    const res = await rest(`conformance_filter_docs?${qs}`);
    assert.equal(res.status, 400, qs);
    const body = await res.json();
    assert.equal(body.code, "PGRST100", qs);
    assert.match(body.message, /^"failed to parse /, qs);
  }
});

Deno.test("a filter on an unknown column is 400 42703; the values are bound, never SQL", async () => {
  const res = await rest("conformance_filter_docs?nope=eq.1");
  assert.equal(res.status, 400);
  assert.equal((await res.json()).message, "column conformance_filter_docs.nope does not exist");
  const injection = await docs().eq("title", "x'; drop table public.conformance_filter_docs; --");
  assert.deepEqual(ids(injection), []);
  const still = await rest("conformance_filter_docs?select=id&limit=1");
  assert.equal(still.status, 200, "the table is still there");
  await still.body?.cancel();
});

Deno.test("a value of the wrong type is PostgreSQL's 22P02 as a 400", async () => {
  const { error, status } = await docs().eq("n", "not-a-number");
  assert.equal(status, 400);
  assert.equal(error.code, "22P02");
  assert.equal(error.message, 'invalid input syntax for type integer: "not-a-number"');
});

Deno.test("filters test teardown", async () => {
  await dropFixture(sql, FIXTURE);
  await sql.end();
});
