// Errors through the Data API stand-in as hosted PostgREST answers them: the { code, details, hint, message }
// shape and Proxy-Status; PostgREST's SQLSTATE → HTTP table (P0001 400, 42501 401/403, 42883/42P01 404, 22*
// 400, XX000 500, an unknown class such as our PB402 400); a status from SQL (SQLSTATE 'PTxyz', the 'PGRST'
// JSON form with headers, response.status/response.headers); schemas (PGRST106), paths and methods (PGRST125,
// PGRST101).
import assert from "node:assert/strict";
import { createTestUser, deleteTestUsers, testSql } from "./_lib/db.ts";
import { createFixture, dropFixture, type Fixture, rest } from "./_lib/rest-fixtures.ts";
import { anonClient, clientWithToken } from "./_lib/supabase.ts";
import { es256, userClaims } from "./_lib/tokens.ts";

const sql = testSql(2);
const db = anonClient();
// deno-lint-ignore no-explicit-any
const fail = (kind: string) => (db as any).rpc("conformance_errors_raise", { kind });

const FIXTURE: Fixture = {
  tables: ["conformance_errors_items"],
  functions: ["public.conformance_errors_raise(text)", "public.conformance_errors_guc()"],
  probe: "conformance_errors_items?limit=0",
  ddl: `
    create table public.conformance_errors_items (id int primary key);
    grant select on public.conformance_errors_items to authenticated;
    create function public.conformance_errors_raise(kind text) returns int language plpgsql as $$
    begin
      case kind
        when 'p0001' then raise exception 'plain failure' using detail = 'some detail', hint = 'some hint';
        when 'pt402' then raise sqlstate 'PT402' using message = 'Payment Required', detail = 'Quota exceeded';
        when 'pgrst' then raise sqlstate 'PGRST' using
          message = '{"code":"123","message":"Payment Required","details":"Quota exceeded","hint":"Upgrade your plan"}',
          detail = '{"status":402,"headers":{"X-Powered-By":"Nerd Rage"}}';
        when 'pgrst-bad' then raise sqlstate 'PGRST' using message = 'not json', detail = '{}';
        when 'pb402' then raise exception 'not enough tokens' using errcode = 'PB402';
        when 'pb404' then raise exception 'unknown user' using errcode = 'PB404';
        when 'pb409' then raise exception 'reference already used' using errcode = 'PB409';
        when 'pgrst-doc' then raise sqlstate 'PGRST' using
          message = json_build_object('code', 'PB402', 'message', 'not enough tokens', 'hint', 'Buy a token pack')::text,
          detail = json_build_object('status', 402, 'headers', json_build_object('Retry-After', '60'))::text;
        when 'privilege' then raise insufficient_privilege using message = 'not for you';
        when 'zero' then return 1 / 0;
        when 'internal' then raise internal_error using message = 'broken';
        when 'undefined_function' then raise undefined_function using message = 'no such thing';
        when 'undefined_table' then raise undefined_table using message = 'no such table';
        when 'unique' then raise unique_violation using message = 'taken';
        else return 0;
      end case;
    end
    $$;
    create function public.conformance_errors_guc() returns text language plpgsql as $$
    begin
      perform set_config('response.status', '202', true);
      perform set_config('response.headers', '[{"X-Custom":"yes"},{"Cache-Control":"max-age=60"}]', true);
      return 'accepted';
    end
    $$;
    grant execute on function public.conformance_errors_raise(text), public.conformance_errors_guc()
      to anon, authenticated;`,
};

await createFixture(sql, FIXTURE);

Deno.test("RAISE EXCEPTION (P0001) is 400 with message, details and hint", async () => {
  const { data, error, status } = await fail("p0001");
  assert.equal(data, null);
  assert.equal(status, 400);
  assert.deepEqual(error, {
    code: "P0001",
    details: "some detail",
    hint: "some hint",
    message: "plain failure",
  });
});

Deno.test("SQLSTATE 'PTxyz' answers HTTP xyz: PT402 is 402", async () => {
  const { error, status } = await fail("pt402");
  assert.equal(status, 402);
  assert.deepEqual(error, {
    code: "PT402",
    details: "Quota exceeded",
    hint: null,
    message: "Payment Required",
  });
});

Deno.test("SQLSTATE 'PGRST' sets the whole error, the status and headers from its JSON", async () => {
  const res = await rest("rpc/conformance_errors_raise", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ kind: "pgrst" }),
  });
  assert.equal(res.status, 402);
  assert.equal(res.headers.get("x-powered-by"), "Nerd Rage");
  assert.deepEqual(await res.json(), {
    code: "123",
    details: "Quota exceeded",
    hint: "Upgrade your plan",
    message: "Payment Required",
  });
});

Deno.test("a 'PGRST' error whose MESSAGE is not the JSON form is 500 PGRST121", async () => {
  const { error, status } = await fail("pgrst-bad");
  assert.equal(status, 500);
  assert.equal(error.code, "PGRST121");
  assert.equal(error.message, `Could not parse JSON in the "RAISE SQLSTATE 'PGRST'" error`);
  assert.equal(error.details, "Invalid JSON value for MESSAGE: 'not json'");
});

Deno.test("our own SQLSTATE PB402 is a class PostgREST does not know: 400, code PB402", async () => {
  const { error, status } = await fail("pb402");
  assert.equal(status, 400);
  assert.deepEqual(error, { code: "PB402", details: null, hint: null, message: "not enough tokens" });
});

Deno.test("every PB code is 400 through the Data API, whatever status the edge functions give it", async () => {
  for (const [kind, code] of [["pb404", "PB404"], ["pb409", "PB409"]]) {
    const { error, status } = await fail(kind);
    assert.equal(status, 400, kind);
    assert.equal(error.code, code);
  }
});

Deno.test("docs/error_codes.md's PGRST example: 402, our code, a hint and Retry-After", async () => {
  const res = await rest("rpc/conformance_errors_raise", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ kind: "pgrst-doc" }),
  });
  assert.equal(res.status, 402);
  assert.equal(res.headers.get("retry-after"), "60");
  assert.deepEqual(await res.json(), {
    code: "PB402",
    details: null,
    hint: "Buy a token pack",
    message: "not enough tokens",
  });
});

Deno.test("insufficient_privilege (42501) is 401 for anon, 403 for a signed-in user", async () => {
  const anon = await fail("privilege");
  assert.equal(anon.status, 401);
  assert.equal(anon.error.code, "42501");
  const user = await createTestUser(sql);
  try {
    const me = clientWithToken(await es256(userClaims(user.id)));
    // deno-lint-ignore no-explicit-any
    const signedIn = await (me as any).rpc("conformance_errors_raise", { kind: "privilege" });
    assert.equal(signedIn.status, 403);
    assert.equal(signedIn.error.message, "not for you");
  } finally {
    await deleteTestUsers(sql, [user]);
  }
});

Deno.test("a 401 carries WWW-Authenticate: Bearer and every error carries Proxy-Status", async () => {
  const res = await rest("conformance_errors_items");
  assert.equal(res.status, 401);
  assert.equal(res.headers.get("www-authenticate"), "Bearer");
  assert.equal(res.headers.get("proxy-status"), "PostgREST; error=42501");
  assert.equal(res.headers.get("content-type"), "application/json; charset=utf-8");
  assert.deepEqual(await res.json(), {
    code: "42501",
    details: null,
    hint: null,
    message: "permission denied for table conformance_errors_items",
  });
});

Deno.test("division by zero (22012) is 400; internal_error (XX000) is 500; unique_violation is 409", async () => {
  const zero = await fail("zero");
  assert.equal(zero.status, 400);
  assert.equal(zero.error.code, "22012");
  assert.equal(zero.error.message, "division by zero");
  const internal = await fail("internal");
  assert.equal(internal.status, 500);
  assert.equal(internal.error.code, "XX000");
  const unique = await fail("unique");
  assert.equal(unique.status, 409);
});

Deno.test("undefined_function (42883) and undefined_table (42P01) raised in SQL are 404", async () => {
  assert.equal((await fail("undefined_function")).status, 404);
  assert.equal((await fail("undefined_table")).status, 404);
});

Deno.test("response.status and response.headers set in SQL shape a successful answer", async () => {
  const res = await rest("rpc/conformance_errors_guc", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: "{}",
  });
  assert.equal(res.status, 202);
  assert.equal(res.headers.get("x-custom"), "yes");
  assert.equal(res.headers.get("cache-control"), "max-age=60");
  assert.equal(await res.json(), "accepted");
});

Deno.test("Accept-Profile with a schema that is not exposed is 406 PGRST106 listing the exposed ones", async () => {
  const { error, status } = await anonClient().schema("private" as never).from("rate_limit_buckets" as never)
    .select();
  assert.equal(status, 406);
  assert.deepEqual(error, {
    code: "PGRST106",
    details: null,
    hint: "Only the following schemas are exposed: public, graphql_public",
    message: "Invalid schema: private",
  });
  const write = await rest("conformance_errors_items", {
    method: "POST",
    headers: { "content-profile": "auth", "content-type": "application/json" },
    body: "{}",
  });
  assert.equal(write.status, 406, "writes pick the schema with Content-Profile");
  assert.equal((await write.json()).message, "Invalid schema: auth");
});

Deno.test("an exposed schema is chosen by Accept-Profile: its own tables only (PGRST205 in graphql_public)", async () => {
  const res = await rest("conformance_errors_items", { headers: { "accept-profile": "graphql_public" } });
  assert.equal(res.status, 404);
  const body = await res.json();
  assert.equal(body.code, "PGRST205");
  assert.equal(
    body.message,
    "Could not find the table 'graphql_public.conformance_errors_items' in the schema cache",
  );
  const pub = await rest("subscription_plans?select=id&limit=1", { headers: { "accept-profile": "public" } });
  assert.equal(pub.status, 200);
  assert.equal(pub.headers.get("content-profile"), "public");
  await pub.body?.cancel();
});

Deno.test("a path that is neither a table nor rpc/<fn> is 404 PGRST125; RPC with PATCH is 405 PGRST101", async () => {
  const deep = await rest("conformance_errors_items/1");
  assert.equal(deep.status, 404);
  assert.deepEqual(await deep.json(), {
    code: "PGRST125",
    details: null,
    hint: null,
    message: "Invalid path specified in request URL",
  });
  const patch = await rest("rpc/conformance_errors_guc", { method: "PATCH", body: "{}" });
  assert.equal(patch.status, 405);
  assert.equal((await patch.json()).message, "Cannot use the PATCH method on RPC");
});

Deno.test("errors test teardown", async () => {
  await dropFixture(sql, FIXTURE);
  await sql.end();
});
