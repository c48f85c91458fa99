// GET /functions/v1/marketplace (supabase/functions/marketplace): the listing of list_ai_employees, plans and packs
// as anon reads them, through a Redis cache keyed by the catalog version and the query — a miss then a hit, an
// operator's catalog change invalidating it, the TTL by sort, ETag and If-None-Match (304), the headers, bad input
// (400, nothing written), and Redis down or hanging (a functions server of its own, pointed at a dead or silent
// Upstash URL: 200 from Postgres, X-Cache: bypass). Also the PGRST mapping of _shared/http/errors.ts on the
// marketplace SQL's real refusals over a direct connection.
import assert from "node:assert/strict";
import { Redis } from "npm:@upstash/redis@1.39.0";
import { toHttpError } from "../_shared/http/errors.ts";
import { createTestUser, deleteTestUsers, type Sql, testSql } from "./_lib/db.ts";
import { stack } from "./_lib/stack.ts";

const ROOT = new URL("../../../", import.meta.url).pathname;
const upstash = new Redis({ url: stack.upstashUrl, token: stack.upstashToken });

type Answer = { status: number; headers: Headers; text: string; body: Record<string, unknown> | null };

async function get(base: string, path: string, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await fetch(`${base}/functions/v1/marketplace${path}`, {
    headers: { authorization: `Bearer ${stack.anonKey}`, ...headers },
  });
  const text = await res.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch { /* not JSON */ }
  return { status: res.status, headers: res.headers, text, body };
}
const market = (path: string, headers?: Record<string, string>) => get(stack.apiUrl, path, headers);

/** A search no other request has made: a fresh cache key (the word excluded matches nothing). */
const freshQuery = () => `q=${encodeURIComponent(`agent -zz${crypto.randomUUID().slice(0, 8)}`)}`;

async function catalogVersion(sql: Sql): Promise<string> {
  const [{ v }] = await sql`select public.marketplace_catalog_version()::text as v`;
  return v;
}

async function listingKeys(version: string): Promise<string[]> {
  return (await upstash.keys(`marketplace:v1:list:${version}:*`)).sort();
}

/** What anon's own call of the SQL returns (as PostgREST would run it). */
async function listingAsAnon(sql: Sql, args: { query?: string; sort?: string; limit?: number }) {
  return await sql.begin(async (tx) => {
    await tx`select set_config('role', 'anon', true), set_config('request.jwt.claims', '{"role":"anon"}', true)`;
    const [row] = await tx`select public.list_ai_employees(p_query => ${args.query ?? null}::text,
                             p_sort => ${args.sort ?? "popular"}, p_limit => ${args.limit ?? 20}) as r`;
    return row.r;
  });
}

Deno.test("a listing is a miss, then a hit with the same body and ETag, and matches what anon's SQL call returns", async () => {
  const sql = testSql(2);
  try {
    const q = freshQuery();
    const first = await market(`?${q}&limit=5`);
    assert.equal(first.status, 200, first.text);
    assert.equal(first.headers.get("x-cache"), "miss");
    const second = await market(`?${q}&limit=5`);
    assert.equal(second.status, 200);
    assert.equal(second.headers.get("x-cache"), "hit");
    assert.equal(second.text, first.text);
    assert.equal(second.headers.get("etag"), first.headers.get("etag"));

    const direct = await listingAsAnon(sql, { query: decodeURIComponent(q.slice(2)), limit: 5 });
    assert.deepEqual(first.body, direct);
    const body = first.body as { items: unknown[]; facets: unknown[]; catalog_version: number };
    assert.ok(body.items.length > 0 && body.items.length <= 5);
    assert.ok(body.facets.length > 0);
    assert.equal(String(body.catalog_version), await catalogVersion(sql));
  } finally {
    await sql.end();
  }
});

Deno.test("the same query in another spelling (parameter order, white space in the search) is the same cache entry", async () => {
  const word = `-zz${crypto.randomUUID().slice(0, 8)}`;
  const first = await market(`?sort=name&q=${encodeURIComponent(`agent   ${word}`)}`);
  assert.equal(first.headers.get("x-cache"), "miss");
  const second = await market(`?q=${encodeURIComponent(` agent ${word} `)}&sort=name`);
  assert.equal(second.headers.get("x-cache"), "hit");
  assert.equal(second.text, first.text);
});

Deno.test("an operator's catalog change bumps the version and the next request is a miss showing the change", async () => {
  const sql = testSql(2);
  const slug = "research-summarizer";
  const [{ short_description: before }] = await sql`select short_description from public.ai_employees
                                                    where slug = ${slug}`;
  try {
    const q = `q=${encodeURIComponent("research summarizer")}&sort=name`;
    await market(`?${q}`);
    const cached = await market(`?${q}`);
    assert.equal(cached.headers.get("x-cache"), "hit");
    const version = await catalogVersion(sql);

    const changed = `Summarises papers and reports (test ${crypto.randomUUID().slice(0, 8)}).`;
    await sql`update public.ai_employees set short_description = ${changed} where slug = ${slug}`;
    assert.notEqual(await catalogVersion(sql), version, "the trigger bumped the catalog version");

    const after = await market(`?${q}`);
    assert.equal(after.status, 200);
    assert.equal(after.headers.get("x-cache"), "miss");
    assert.notEqual(after.headers.get("etag"), cached.headers.get("etag"));
    const card = (after.body!.items as { slug: string; short_description: string }[]).find((c) =>
      c.slug === slug
    );
    assert.equal(card?.short_description, changed);
    assert.equal((await market(`?${q}`)).headers.get("x-cache"), "hit", "cached again under the new version");
  } finally {
    await sql`update public.ai_employees set short_description = ${before} where slug = ${slug}`;
    await sql.end();
  }
});

Deno.test("entries of the popular and rating sorts live 60 s in Redis, those of newest and name longer (300 s)", async () => {
  const sql = testSql(1);
  try {
    for (
      const [sort, min, max] of [["popular", 1, 60], ["rating", 1, 60], ["newest", 61, 300], [
        "name",
        61,
        300,
      ]]
    ) {
      const version = await catalogVersion(sql);
      const before = await listingKeys(version);
      const res = await market(`?${freshQuery()}&sort=${sort}`);
      assert.equal(res.headers.get("x-cache"), "miss");
      const added = (await listingKeys(version)).filter((k) => !before.includes(k));
      assert.equal(added.length, 1, `${sort}: one new entry`);
      const ttl = await upstash.ttl(added[0]);
      assert.ok(ttl >= (min as number) && ttl <= (max as number), `${sort}: ttl ${ttl}`);
    }
    // No sort given is the SQL's default (popular): 60 s too.
    const version = await catalogVersion(sql);
    const before = await listingKeys(version);
    await market(`?${freshQuery()}`);
    const [key] = (await listingKeys(version)).filter((k) => !before.includes(k));
    assert.ok((await upstash.ttl(key)) <= 60);
  } finally {
    await sql.end();
  }
});

Deno.test("If-None-Match with the ETag is a 304 without a body; a stale or other ETag gets the 200", async () => {
  const q = freshQuery();
  const first = await market(`?${q}`);
  const etag = first.headers.get("etag")!;
  assert.match(etag, /^"[A-Za-z0-9_-]{22}"$/);
  for (const header of [etag, `W/${etag}`, `"other", ${etag}`, "*"]) {
    const res = await market(`?${q}`, { "if-none-match": header });
    assert.equal(res.status, 304, header);
    assert.equal(res.text, "");
    assert.equal(res.headers.get("etag"), etag);
    assert.equal(res.headers.get("cache-control"), "public, max-age=60, stale-while-revalidate=300");
  }
  const other = await market(`?${q}`, { "if-none-match": '"not-this-one"' });
  assert.equal(other.status, 200);
  assert.equal(other.text, first.text);
});

Deno.test("a listing answers JSON with Cache-Control public, max-age=60, stale-while-revalidate=300, an ETag and X-Cache; CORS exposes them", async () => {
  const res = await market(`?${freshQuery()}`, { origin: "http://localhost:3000" });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "application/json; charset=utf-8");
  assert.equal(res.headers.get("cache-control"), "public, max-age=60, stale-while-revalidate=300");
  assert.ok(res.headers.get("etag"));
  assert.equal(res.headers.get("x-cache"), "miss");
  assert.equal(res.headers.get("access-control-allow-origin"), "http://localhost:3000");
  assert.match(res.headers.get("access-control-expose-headers")!, /etag.*x-cache/);
  assert.match(res.headers.get("vary")!, /Origin/);
});

Deno.test("no system prompt (nor any of its text) is in a listing", async () => {
  const sql = testSql(1);
  try {
    const res = await market("?limit=50&sort=name");
    assert.equal(res.status, 200);
    assert.doesNotMatch(res.text, /system_prompt/);
    const prompts = await sql`select system_prompt from public.ai_employees where is_listed`;
    for (const { system_prompt } of prompts) assert.ok(!res.text.includes(system_prompt));
  } finally {
    await sql.end();
  }
});

Deno.test("the keyset cursor of one answer gives the next page, which is cached on its own", async () => {
  const first = await market("?sort=name&limit=5");
  const cursor = first.body!.next_cursor as string;
  assert.ok(cursor);
  const next = await market(`?sort=name&limit=5&after=${cursor}`);
  assert.equal(next.status, 200, next.text);
  const names = (r: Answer) => (r.body!.items as { name: string }[]).map((c) => c.name);
  assert.equal(names(next).length, 5);
  assert.ok(names(next)[0] >= names(first)[4]);
  assert.equal(names(next).filter((n) => names(first).includes(n)).length, 0);
});

Deno.test("bad input is a 400 in the one error shape with the SQL's own code, and writes no cache entry", async () => {
  const sql = testSql(1);
  try {
    const version = await catalogVersion(sql);
    const before = await listingKeys(version);
    const cases: [string, string][] = [
      ["?sort=best", "invalid_sort"],
      ["?limit=10000", "invalid_limit"],
      ["?limit=0", "invalid_limit"],
      ["?after=not-a-cursor", "invalid_cursor"],
      // A cursor of another sort is not this list's.
      [`?sort=newest&after=${(await market("?sort=name&limit=1")).body!.next_cursor}`, "invalid_cursor"],
      [`?q=${"a".repeat(10 * 1024)}`, "query_too_long"],
      ["?category=no-such-category", "unknown_category"],
      ["?limit=ten", "invalid_request"],
      ["?limit=-1", "invalid_request"],
      ["?sorting=name", "invalid_request"],
      ["?sort=name&sort=rating", "invalid_request"],
    ];
    const after = (await listingKeys(version)).filter((k) => !before.includes(k)); // the name page above
    for (const [query, code] of cases) {
      const res = await market(query);
      assert.equal(res.status, 400, `${query.slice(0, 40)}: ${res.text}`);
      const error = (res.body as { error: { code: string; message: string } }).error;
      assert.equal(error.code, code, query.slice(0, 40));
      assert.ok(error.message.length > 0);
      assert.equal(res.headers.get("cache-control"), "no-store", "an error is never cached");
    }
    assert.deepEqual(
      (await listingKeys(version)).filter((k) => !before.includes(k)),
      after,
      "no refused request left a cache entry",
    );
    assert.equal(await catalogVersion(sql), version);
    assert.equal((await market("/plans?x=1")).status, 400);
    assert.equal((await market("/nowhere")).status, 404);
    const post = await fetch(`${stack.functionsUrl}/marketplace`, {
      method: "POST",
      headers: { authorization: `Bearer ${stack.anonKey}` },
    });
    await post.body?.cancel();
    assert.equal(post.status, 405);
  } finally {
    await sql.end();
  }
});

Deno.test("without a key the gateway refuses (401); the anon key is enough", async () => {
  const res = await fetch(`${stack.functionsUrl}/marketplace`);
  await res.body?.cancel();
  assert.equal(res.status, 401);
  assert.equal((await market("")).status, 200);
});

Deno.test("plans and packs are what anon reads (active ones, sorted, no Stripe ids), cached with an ETag and 304", async () => {
  const sql = testSql(1);
  try {
    for (
      const [path, table, field] of [["/plans", "subscription_plans", "plans"], [
        "/packs",
        "token_packs",
        "packs",
      ]]
    ) {
      const res = await market(path);
      assert.equal(res.status, 200, res.text);
      assert.ok(["hit", "miss"].includes(res.headers.get("x-cache")!));
      assert.equal((await market(path)).headers.get("x-cache"), "hit");
      const ids = await sql`select id from ${sql("public")}.${
        sql(table)
      } where is_active order by sort_order, id`;
      assert.deepEqual((res.body![field] as { id: string }[]).map((p) => p.id), ids.map((r) => r.id));
      assert.doesNotMatch(res.text, /stripe_price|is_active|created_at/);
      const notModified = await market(path, { "if-none-match": res.headers.get("etag")! });
      assert.equal(notModified.status, 304);
    }
  } finally {
    await sql.end();
  }
});

// ------------------------------------------------------------------------------------ Redis down or silent

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** A functions server of its own (the test env, the stack's database) whose Upstash URL is `upstashUrl`. */
async function functionsServer(upstashUrl: string): Promise<AsyncDisposable & { url: string }> {
  const port = freePort();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--quiet", `${ROOT}scripts/stack/functions-server.ts`],
    env: {
      API_PORT: String(port),
      DB_URL: stack.dbUrl,
      UPSTASH_URL: upstashUrl,
      KEYS_FILE: stack.keysFile,
      FUNCTIONS_ENV_FILE: `${ROOT}supabase/functions/tests/.env.test`,
    },
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch { /* gone */ }
    await child.status;
  };
  for (let i = 0;; i++) {
    try {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      conn.close();
      break;
    } catch (e) {
      if (i > 300) {
        await stop();
        throw new Error(`the functions server did not start: ${e}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return { url, [Symbol.asyncDispose]: stop };
}

Deno.test("Redis down (nothing listens at the Upstash URL): every route is 200 from Postgres with X-Cache: bypass", async () => {
  const sql = testSql(1);
  await using server = await functionsServer(`http://127.0.0.1:${freePort()}`);
  try {
    const q = freshQuery();
    for (let i = 0; i < 2; i++) {
      const res = await get(server.url, `?${q}&limit=5`);
      assert.equal(res.status, 200, res.text);
      assert.equal(res.headers.get("x-cache"), "bypass");
      assert.deepEqual(
        res.body,
        await listingAsAnon(sql, { query: decodeURIComponent(q.slice(2)), limit: 5 }),
      );
      assert.equal(res.headers.get("cache-control"), "public, max-age=60, stale-while-revalidate=300");
      const notModified = await get(server.url, `?${q}&limit=5`, {
        "if-none-match": res.headers.get("etag")!,
      });
      assert.equal(notModified.status, 304, "the ETag is the body's, with or without Redis");
    }
    for (const path of ["/plans", "/packs"]) {
      const res = await get(server.url, path);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("x-cache"), "bypass");
    }
    assert.equal((await get(server.url, "?sort=best")).status, 400, "bad input is still a 400");
  } finally {
    await sql.end();
  }
});

Deno.test("Redis that accepts connections and never answers: 200 from Postgres with X-Cache: bypass, not an error", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    try {
      for await (const conn of listener) held.push(conn);
    } catch { /* closed */ }
  })();
  try {
    await using server = await functionsServer(`http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`);
    const first = await get(server.url, `?${freshQuery()}`);
    assert.equal(first.status, 200, first.text);
    assert.equal(first.headers.get("x-cache"), "bypass");
    assert.ok(held.length > 0, "the function did try Redis");
    const second = await get(server.url, "/packs");
    assert.equal(second.status, 200);
    assert.equal(second.headers.get("x-cache"), "bypass");
  } finally {
    listener.close();
    for (const conn of held) {
      try {
        conn.close();
      } catch { /* closed */ }
    }
    await accepting;
  }
});

// ------------------------------------------------------------------------- the PGRST mapping (errors.ts)

Deno.test("errors.ts maps the marketplace SQL's PGRST refusals over a direct connection to their status, code, details and hint", async () => {
  const sql = testSql(2);
  const user = await createTestUser(sql);
  try {
    const refusal = async (run: () => Promise<unknown>) => {
      try {
        await run();
      } catch (e) {
        return toHttpError(e);
      }
      throw new Error("the SQL did not refuse");
    };
    const sort = await refusal(() => sql`select public.list_ai_employees(p_sort => 'best')`);
    assert.deepEqual([sort.status, sort.code, sort.hint], [
      400,
      "invalid_sort",
      "Sort by popular, rating, newest or name",
    ]);
    assert.equal(sort.message, "There is no sort best");

    const anonymous = await refusal(() => sql`select public.hire_employee('support-agent')`);
    assert.deepEqual([anonymous.status, anonymous.code], [401, "not_authenticated"], "no user in the claims");

    // The free plan has one slot: a second hire is hire_limit_reached, 403, with the details the SQL gives.
    const asUser = (slug: string) =>
      sql.begin(async (tx) => {
        await tx`select set_config('role', 'authenticated', true),
                        set_config('request.jwt.claims', ${
          JSON.stringify({ sub: user.id, role: "authenticated" })
        }, true)`;
        return await tx`select (public.hire_employee(${slug})).id`;
      });
    const unknown = await refusal(() => asUser("no-such-employee"));
    assert.deepEqual([unknown.status, unknown.code], [404, "employee_not_found"]);
    const retired = await refusal(() => asUser("contract-reviewer"));
    assert.deepEqual([retired.status, retired.code], [409, "employee_retired"]);
    await asUser("support-agent");
    const limit = await refusal(() => asUser("sales-sdr"));
    assert.equal(limit.status, 403);
    assert.equal(limit.code, "hire_limit_reached");
    assert.match(limit.details!, /1 of 1/);
    assert.ok(limit.hint);
    const [{ n }] =
      await sql`select count(*)::int as n from public.purchased_employees where user_id = ${user.id}`;
    assert.equal(n, 1, "the refused hire wrote nothing");

    // A PGRST error not in PostgREST's form is a bare 500, never its text.
    const malformed = await refusal(() =>
      sql`do $$ begin raise sqlstate 'PGRST' using message = 'not json'; end $$`
    );
    assert.deepEqual([malformed.status, malformed.code, malformed.message], [
      500,
      "internal_error",
      "Internal error",
    ]);
    const badStatus = await refusal(() =>
      sql`do $$ begin raise sqlstate 'PGRST' using message = '{"code":"x","message":"m"}',
                                               detail = '{"status":200,"headers":{}}'; end $$`
    );
    assert.equal(badStatus.status, 500);
  } finally {
    await deleteTestUsers(sql, [user]);
    await sql.end();
  }
});
