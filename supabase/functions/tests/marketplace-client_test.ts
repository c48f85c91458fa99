// The marketplace's client paths with supabase-js through the local Data API and Auth, as a front end runs them: a
// user signed up through Auth browses (list_ai_employees: a category, facets, the keyset next page, a search),
// reads an employee (never its system prompt), hires (hire_employee; the plan's cap), lists, renames, instructs and
// deactivates their own hires under RLS (another user cannot), upgrades after an operator's new version, and rates
// (hirers only, edit their own; public reviews show no user id or email). Each test has its own category of test
// employees (operators' inserts as superuser), removed at the end with its users.
import assert from "node:assert/strict";
import { authScenario, type SignedUp } from "./_lib/auth.ts";
import { type Sql, testSql } from "./_lib/db.ts";
import { anonClient } from "./_lib/supabase.ts";
import type { Database } from "../_shared/database.types.ts";

// The generated Insert type requires employee_version (not null, no default), but the database sets it (a trigger)
// and the client may not send it (column grants): a rating is inserted without it.
type RatingInsert = Database["public"]["Tables"]["employee_ratings"]["Insert"];
const ratingRow = (row: { user_id: string; employee_id: string; stars: number; review?: string }) =>
  row as RatingInsert;

const MODEL = { provider: "openai", model: "gpt-4o-mini" };

type Catalog = {
  category: string;
  /** A test employee's slug (`<category>-<name>`), made on first use. */
  employee: (name: string, fields?: { status?: string; description?: string }) => Promise<string>;
};

/** A category of test employees for one test, deleted (with them) after it and its users. */
async function withCatalog(fn: (catalog: Catalog, sql: Sql) => Promise<void>): Promise<void> {
  const sql = testSql(2);
  const category = `test-client-${crypto.randomUUID().slice(0, 8)}`;
  await sql`insert into public.ai_employee_categories (slug, name) values (${category}, 'Client test')`;
  try {
    await fn({
      category,
      employee: async (name, fields = {}) => {
        const slug = `${category}-${name}`;
        await sql`insert into public.ai_employees (slug, name, role, category, department, level, status,
                                                   short_description, provider, model, system_prompt)
                  values (${slug}, ${name}, 'Test role', ${category}, 'Test', 'mid', ${
          fields.status ?? "available"
        },
                          ${fields.description ?? "A test employee"}, ${MODEL.provider}, ${MODEL.model},
                          ${`SECRET prompt of ${slug}`})`;
        return slug;
      },
    }, sql);
  } finally {
    await sql`delete from public.ai_employees where category = ${category}`;
    await sql`delete from public.ai_employee_categories where slug = ${category}`;
    await sql.end();
  }
}

type Card = { slug: string; name: string; status: string; current_version: number };
type Listing = {
  items: Card[];
  next_cursor: string | null;
  total: number;
  facets: { category: string; employees: number }[];
};

Deno.test("a signed-up user browses a category by keyset pages, sees its facet count, and finds an employee by search", async () => {
  await withCatalog(async (catalog) => {
    const word = `zq${crypto.randomUUID().slice(0, 6)}`;
    for (const name of ["alpha", "bravo", "charlie"]) await catalog.employee(name);
    await catalog.employee("delta", { description: `Knows ${word} inside out`, status: "coming_soon" });
    await authScenario(async (s) => {
      const { client } = await s.signUp();
      const supabase = client.supabase;
      const page1 = await supabase.rpc("list_ai_employees", {
        p_category: catalog.category,
        p_sort: "name",
        p_limit: 2,
      });
      assert.equal(page1.error, null);
      const first = page1.data as unknown as Listing;
      assert.deepEqual(first.items.map((c) => c.name), ["alpha", "bravo"]);
      assert.equal(first.total, 4);
      assert.equal(first.facets.find((f) => f.category === catalog.category)?.employees, 4);
      assert.ok(first.next_cursor);

      const page2 = await supabase.rpc("list_ai_employees", {
        p_category: catalog.category,
        p_sort: "name",
        p_limit: 2,
        p_after: first.next_cursor!,
      });
      assert.equal(page2.error, null);
      const second = page2.data as unknown as Listing;
      assert.deepEqual(second.items.map((c) => c.name), ["charlie", "delta"]);
      assert.equal(second.next_cursor, null, "the last page");

      const search = await supabase.rpc("list_ai_employees", { p_query: word });
      assert.equal(search.error, null);
      const found = search.data as unknown as Listing;
      assert.deepEqual(found.items.map((c) => [c.slug, c.status]), [[
        `${catalog.category}-delta`,
        "coming_soon",
      ]]);

      // The same listing for anon, and a bad sort refused with the SQL's code through supabase-js's error.
      const anon = await anonClient().rpc("list_ai_employees", {
        p_category: catalog.category,
        p_sort: "name",
      });
      assert.equal((anon.data as unknown as Listing).items.length, 4);
      const bad = await supabase.rpc("list_ai_employees", { p_sort: "best" });
      assert.equal(bad.status, 400);
      assert.equal(bad.error?.code, "invalid_sort");
      const cursorOfAnother = await supabase.rpc("list_ai_employees", {
        p_sort: "newest",
        p_after: first.next_cursor!,
      });
      assert.equal(cursorOfAnother.error?.code, "invalid_cursor");
    });
  });
});

Deno.test("an employee's row and detail are readable without its system prompt: select('system_prompt') and select('*') are refused", async () => {
  await withCatalog(async (catalog) => {
    const slug = await catalog.employee("reader");
    await authScenario(async (s) => {
      const { client } = await s.signUp();
      const supabase = client.supabase;
      const row = await supabase.from("ai_employees").select("slug, name, role, current_version").eq(
        "slug",
        slug,
      )
        .single();
      assert.equal(row.error, null);
      assert.deepEqual(row.data, { slug, name: "reader", role: "Test role", current_version: 1 });

      const prompt = await supabase.from("ai_employees").select("system_prompt").eq("slug", slug);
      assert.equal(prompt.status, 403);
      assert.equal(prompt.error?.code, "42501");
      assert.equal(prompt.data, null);
      // select('*') names every column, the prompt too: refused the same way (name the columns instead).
      const star = await supabase.from("ai_employees").select("*").eq("slug", slug);
      assert.equal(star.error?.code, "42501");
      const anonStar = await anonClient().from("ai_employees").select("*").eq("slug", slug);
      assert.equal(anonStar.status, 401, "anon's permission error is a 401, as PostgREST answers it");
      const versions = await supabase.from("ai_employee_versions").select("system_prompt").limit(1);
      assert.equal(versions.error?.code, "42501");

      const detail = await supabase.rpc("get_ai_employee", { p_slug: slug });
      assert.equal(detail.error, null);
      const text = JSON.stringify(detail.data);
      assert.doesNotMatch(text, /system_prompt|SECRET prompt/);
      assert.equal((detail.data as { versions: unknown[] }).versions.length, 1);
    });
  });
});

Deno.test("hire_employee pins the version in force; the free plan's one slot makes a second hire hire_limit_reached (403) and coming soon is 409", async () => {
  await withCatalog(async (catalog, sql) => {
    const first = await catalog.employee("first");
    const second = await catalog.employee("second");
    const soon = await catalog.employee("soon", { status: "coming_soon" });
    await authScenario(async (s) => {
      const { client, user } = await s.signUp();
      const supabase = client.supabase;
      const hire = await supabase.rpc("hire_employee", { p_slug: first });
      assert.equal(hire.error, null);
      assert.equal(hire.data!.user_id, user.id);
      assert.equal(hire.data!.pinned_version, 1);
      assert.equal(hire.data!.is_active, true);
      const again = await supabase.rpc("hire_employee", { p_slug: first });
      assert.equal(again.data!.id, hire.data!.id, "idempotent");

      const refused = await supabase.rpc("hire_employee", { p_slug: second });
      assert.equal(refused.status, 403);
      assert.equal(refused.error?.code, "hire_limit_reached");
      assert.match(refused.error!.details, /1 of 1/);
      assert.ok(refused.error!.hint);
      const coming = await supabase.rpc("hire_employee", { p_slug: soon });
      assert.equal(coming.status, 409);
      assert.equal(coming.error?.code, "employee_coming_soon");
      const missing = await supabase.rpc("hire_employee", { p_slug: `${catalog.category}-nobody` });
      assert.equal(missing.status, 404);
      assert.equal(missing.error?.code, "employee_not_found");
      const [{ n }] =
        await sql`select count(*)::int as n from public.purchased_employees where user_id = ${user.id}`;
      assert.equal(n, 1, "refused hires wrote nothing");

      // anon cannot hire at all.
      const anon = await anonClient().rpc("hire_employee", { p_slug: first });
      assert.ok(anon.error);
    });
  });
});

Deno.test("a user lists, renames, instructs and deactivates their own hires under RLS; another user sees and changes none of it", async () => {
  await withCatalog(async (catalog, sql) => {
    const slug = await catalog.employee("assistant");
    await authScenario(async (s) => {
      const owner = await s.signUp();
      const other = await s.signUp();
      const mine = owner.client.supabase;
      const { data: hire } = await mine.rpc("hire_employee", { p_slug: slug });

      const list = await mine.from("purchased_employees")
        .select("id, nickname, is_active, pinned_version, ai_employees(slug, name)").eq("is_active", true);
      assert.equal(list.error, null);
      assert.deepEqual(list.data, [{
        id: hire!.id,
        nickname: null,
        is_active: true,
        pinned_version: 1,
        ai_employees: { slug, name: "assistant" },
      }]);

      const renamed = await mine.from("purchased_employees")
        .update({ nickname: "Sam", custom_instructions: "Answer in French." }).eq("id", hire!.id)
        .select("nickname, custom_instructions").single();
      assert.equal(renamed.error, null);
      assert.deepEqual(renamed.data, { nickname: "Sam", custom_instructions: "Answer in French." });
      const tooLong = await mine.from("purchased_employees").update({ custom_instructions: "x".repeat(4001) })
        .eq("id", hire!.id);
      assert.equal(tooLong.error?.code, "23514");
      const pin = await mine.from("purchased_employees").update({ pinned_version: 1 } as never).eq(
        "id",
        hire!.id,
      );
      assert.equal(pin.error?.code, "42501", "the pin is not the client's to set");
      const insert = await mine.from("purchased_employees")
        .insert({ user_id: owner.user.id, employee_id: hire!.employee_id } as never);
      assert.equal(insert.error?.code, "42501", "a hire is made only by hire_employee");

      // The other user: nothing to read, and an update by id matches no row.
      const theirs = other.client.supabase;
      const seen = await theirs.from("purchased_employees").select("id").eq("id", hire!.id);
      assert.deepEqual(seen.data, []);
      const hijack = await theirs.from("purchased_employees").update({
        nickname: "Mine now",
        is_active: false,
      })
        .eq("id", hire!.id).select("id");
      assert.deepEqual(hijack.data, []);
      const [row] = await sql`select nickname, is_active from public.purchased_employees where id = ${
        hire!.id
      }`;
      assert.deepEqual({ ...row }, { nickname: "Sam", is_active: true });

      const off = await mine.from("purchased_employees").update({ is_active: false }).eq("id", hire!.id)
        .select("is_active, deactivated_at").single();
      assert.equal(off.error, null);
      assert.equal(off.data!.is_active, false);
      assert.ok(off.data!.deactivated_at);
      const active = await mine.from("purchased_employees").select("id").eq("is_active", true);
      assert.deepEqual(active.data, []);
    });
  });
});

Deno.test("after an operator's new version a hire keeps its pin until upgrade_hired_employee moves it from v1 to v2", async () => {
  await withCatalog(async (catalog, sql) => {
    const slug = await catalog.employee("upgrader");
    await authScenario(async (s) => {
      const owner = await s.signUp();
      const other = await s.signUp();
      const supabase = owner.client.supabase;
      const { data: hire } = await supabase.rpc("hire_employee", { p_slug: slug });
      const same = await supabase.rpc("upgrade_hired_employee", { p_hire_id: hire!.id });
      assert.deepEqual(same.data, { hire_id: hire!.id, from_version: 1, to_version: 1, upgraded: false });

      await sql`update public.ai_employees set system_prompt = 'SECRET prompt, second edition',
                                               change_note = 'A better prompt' where slug = ${slug}`;
      const card = await supabase.from("ai_employees").select("current_version").eq("slug", slug).single();
      assert.equal(card.data!.current_version, 2);
      const pinned = await supabase.from("purchased_employees").select("pinned_version").eq("id", hire!.id)
        .single();
      assert.equal(pinned.data!.pinned_version, 1, "a new version never changes a hire by itself");

      const stranger = await other.client.supabase.rpc("upgrade_hired_employee", { p_hire_id: hire!.id });
      assert.equal(stranger.status, 404);
      assert.equal(stranger.error?.code, "hire_not_found");

      const upgrade = await supabase.rpc("upgrade_hired_employee", { p_hire_id: hire!.id });
      assert.equal(upgrade.error, null);
      assert.deepEqual(upgrade.data, { hire_id: hire!.id, from_version: 1, to_version: 2, upgraded: true });
      const now = await supabase.from("purchased_employees").select("pinned_version").eq("id", hire!.id)
        .single();
      assert.equal(now.data!.pinned_version, 2);
    });
  });
});

Deno.test("only a hirer rates; the author edits their own rating; public reviews show a display name and no user id or email", async () => {
  await withCatalog(async (catalog) => {
    const slug = await catalog.employee("rated");
    await authScenario(async (s) => {
      const author: SignedUp = await s.signUp({ full_name: "Ada Reviewer" });
      const other = await s.signUp();
      const supabase = author.client.supabase;
      const { data: employee } = await supabase.from("ai_employees").select("id").eq("slug", slug).single();
      const fields = { user_id: author.user.id, employee_id: employee!.id, stars: 4, review: "Solid work." };
      const rating = ratingRow(fields);

      const before = await supabase.from("employee_ratings").insert(rating);
      assert.equal(before.status, 403);
      assert.equal(before.error?.code, "not_hired");

      await supabase.rpc("hire_employee", { p_slug: slug });
      const rated = await supabase.from("employee_ratings").insert(rating).select("stars, employee_version")
        .single();
      assert.equal(rated.error, null);
      assert.deepEqual(rated.data, { stars: 4, employee_version: 1 });
      const twice = await supabase.from("employee_ratings").insert(rating);
      assert.equal(twice.error?.code, "23505", "one rating per user and employee");

      // Edited by an update (RLS: the author's own row). An upsert is refused: on conflict it would set user_id and
      // employee_id too, which the author may not update (column grants), as with PostgREST.
      const upsert = await supabase.from("employee_ratings")
        .upsert(ratingRow({ ...fields, stars: 5 }), { onConflict: "user_id,employee_id" });
      assert.equal(upsert.error?.code, "42501");
      const edited = await supabase.from("employee_ratings").update({ stars: 5, review: "Even better." })
        .eq("employee_id", employee!.id).select("stars, review").single();
      assert.equal(edited.error, null);
      assert.deepEqual(edited.data, { stars: 5, review: "Even better." });

      // Someone else neither reads nor edits it.
      const theirs = other.client.supabase;
      assert.deepEqual(
        (await theirs.from("employee_ratings").select("id").eq("employee_id", employee!.id)).data,
        [],
      );
      const hijack = await theirs.from("employee_ratings").update({ stars: 1 }).eq(
        "employee_id",
        employee!.id,
      )
        .select("id");
      assert.deepEqual(hijack.data, []);
      const forged = await theirs.from("employee_ratings").insert(ratingRow({ ...fields, stars: 1 }));
      assert.ok(forged.error, "nobody rates in another user's name");

      const reviews = await anonClient().rpc("list_employee_reviews", { p_slug: slug });
      assert.equal(reviews.error, null);
      const items = (reviews.data as { items: Record<string, unknown>[] }).items;
      assert.equal(items.length, 1);
      assert.equal(items[0].stars, 5);
      assert.equal(items[0].reviewer_name, "Ada Reviewer");
      assert.deepEqual(
        Object.keys(items[0]).sort(),
        ["created_at", "employee_version", "id", "review", "reviewer_name", "stars", "updated_at"],
      );
      const text = JSON.stringify(reviews.data);
      assert.ok(!text.includes(author.user.id) && !text.includes(author.email), "no user id or email");

      const card = await anonClient().rpc("get_ai_employee", { p_slug: slug });
      const analytics =
        (card.data as { analytics: { rating_count: number; average_rating: number } }).analytics;
      assert.equal(analytics.rating_count, 1);
      assert.equal(Number(analytics.average_rating), 5);
    });
  });
});
