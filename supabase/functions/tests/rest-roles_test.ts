// Who a request runs as, and with what, through the Data API stand-in as PostgREST does it: one transaction as
// `authenticator`, `set local role` from the verified JWT (anon key → anon, a user's token → authenticated,
// service key → service_role, no Authorization → anon), request.jwt.claims / method / path / headers / cookies,
// the search path, each role's own settings (statement_timeout 3s for anon, 8s for authenticated) and a
// function's own; and PostgREST's 401s for missing, bad and expired tokens and refused roles.
import assert from "node:assert/strict";
import { createTestUser, deleteTestUsers, testSql } from "./_lib/db.ts";
import { createFixture, dropFixture, type Fixture, rest } from "./_lib/rest-fixtures.ts";
import { stack } from "./_lib/stack.ts";
import { anonClient, clientWithToken, serviceClient } from "./_lib/supabase.ts";
import { es256, hs256, unsigned, userClaims } from "./_lib/tokens.ts";

const sql = testSql(2);

const FIXTURE: Fixture = {
  tables: ["conformance_roles_probe"],
  functions: [
    "public.conformance_roles_whoami()",
    "public.conformance_roles_sleep(float8)",
    "public.conformance_roles_quick_sleep(float8)",
  ],
  probe: "rpc/conformance_roles_whoami",
  ddl: `
    create table public.conformance_roles_probe (id int primary key);
    create function public.conformance_roles_whoami() returns json language sql stable as $$
      select json_build_object(
        'current_user', current_user,
        'session_user', session_user,
        'uid', auth.uid(),
        'role', auth.role(),
        'claims', current_setting('request.jwt.claims', true)::json,
        'method', current_setting('request.method', true),
        'path', current_setting('request.path', true),
        'headers', current_setting('request.headers', true)::json,
        'cookies', current_setting('request.cookies', true)::json,
        'search_path', current_setting('search_path'),
        'statement_timeout', current_setting('statement_timeout'),
        'read_only', current_setting('transaction_read_only'))
    $$;
    create function public.conformance_roles_sleep(seconds float8) returns void language sql
      as $$ select pg_sleep(seconds) $$;
    create function public.conformance_roles_quick_sleep(seconds float8) returns void language sql
      set statement_timeout = '1s' as $$ select pg_sleep(seconds) $$;
    grant execute on function public.conformance_roles_whoami(), public.conformance_roles_sleep(float8),
      public.conformance_roles_quick_sleep(float8) to anon, authenticated, service_role;`,
};

await createFixture(sql, FIXTURE);

type WhoAmI = {
  current_user: string;
  session_user: string;
  uid: string | null;
  role: string;
  claims: Record<string, unknown>;
  method: string;
  path: string;
  headers: Record<string, string>;
  cookies: Record<string, string>;
  search_path: string;
  statement_timeout: string;
  read_only: string;
};
// deno-lint-ignore no-explicit-any
const whoami = async (client: any, opts: Record<string, unknown> = {}): Promise<WhoAmI> => {
  const { data, error } = await client.rpc("conformance_roles_whoami", {}, opts);
  assert.equal(error, null);
  return data as WhoAmI;
};

Deno.test("the anon key runs as anon, connected as authenticator, with the key's claims", async () => {
  const me = await whoami(anonClient());
  assert.equal(me.current_user, "anon");
  assert.equal(me.session_user, "authenticator");
  assert.equal(me.role, "anon");
  assert.equal(me.uid, null);
  assert.equal(me.claims.role, "anon");
  assert.equal(me.claims.iss, "supabase");
});

Deno.test("a user's token runs as authenticated with its claims: auth.uid() is the user", async () => {
  const user = await createTestUser(sql);
  try {
    const me = await whoami(clientWithToken(await es256(userClaims(user.id, user.email))));
    assert.equal(me.current_user, "authenticated");
    assert.equal(me.uid, user.id);
    assert.equal(me.claims.sub, user.id);
    assert.equal(me.claims.email, user.email);
    assert.equal(me.claims.aud, "authenticated");
    assert.equal(typeof me.claims.exp, "number");
  } finally {
    await deleteTestUsers(sql, [user]);
  }
});

Deno.test("the service_role key runs as service_role", async () => {
  const me = await whoami(serviceClient());
  assert.equal(me.current_user, "service_role");
  assert.equal(me.claims.role, "service_role");
});

Deno.test("a request with an apikey but no Authorization header runs as anon", async () => {
  const res = await rest("rpc/conformance_roles_whoami");
  assert.equal(res.status, 200);
  const me = await res.json() as WhoAmI;
  assert.equal(me.current_user, "anon");
  assert.deepEqual(me.claims, { role: "anon" });
});

Deno.test("a token without a role claim runs as the anonymous role", async () => {
  const sub = crypto.randomUUID();
  const res = await rest("rpc/conformance_roles_whoami", { token: await hs256({ sub }) });
  assert.equal(res.status, 200);
  const me = await res.json() as WhoAmI;
  assert.equal(me.current_user, "anon");
  assert.equal(me.claims.role, "anon");
  assert.equal(me.uid, sub);
});

Deno.test("request.method, request.path, request.headers (lower-cased) and request.cookies are set", async () => {
  const res = await rest("rpc/conformance_roles_whoami", {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "X-Custom-Header": "Yes",
      cookie: "theme=dark; session=abc",
    },
    body: "{}",
  });
  const me = await res.json() as WhoAmI;
  assert.equal(me.method, "POST");
  assert.equal(me.path, "/rpc/conformance_roles_whoami");
  assert.equal(me.headers["x-custom-header"], "Yes");
  assert.equal(me.headers.apikey, stack.anonKey);
  assert.equal(me.headers.cookie, undefined, "cookies are in request.cookies, not request.headers");
  assert.deepEqual(me.cookies, { theme: "dark", session: "abc" });
  const get = await whoami(anonClient(), { get: true });
  assert.equal(get.method, "GET");
});

Deno.test("the search path is the request's schema then [api] extra_search_path", async () => {
  const me = await whoami(anonClient());
  assert.equal(me.search_path, '"public", "public", "extensions"');
});

Deno.test("GET runs read-only; a POST to a stable function does too, a volatile one does not", async () => {
  assert.equal((await whoami(anonClient(), { get: true })).read_only, "on");
  assert.equal((await whoami(anonClient())).read_only, "on", "stable: read only even with POST");
});

Deno.test("each role's own settings apply: statement_timeout 3s for anon, 8s for authenticated", async () => {
  assert.equal((await whoami(anonClient())).statement_timeout, "3s");
  const user = await createTestUser(sql);
  try {
    const client = clientWithToken(await es256(userClaims(user.id)));
    assert.equal((await whoami(client)).statement_timeout, "8s");
    const started = Date.now();
    const slowForAnon = await anonClient().rpc("conformance_roles_sleep" as never, { seconds: 4 } as never);
    const anonMs = Date.now() - started;
    assert.equal(slowForAnon.status, 500);
    assert.equal(slowForAnon.error?.code, "57014");
    assert.equal(slowForAnon.error?.message, "canceling statement due to statement timeout");
    assert.ok(anonMs >= 2900, `anon was cut off after ${anonMs} ms: at its 3 s, not sooner`);
    const fine = await client.rpc("conformance_roles_sleep" as never, { seconds: 3.3 } as never);
    assert.equal(fine.error, null, "3.3 s is within authenticated's 8 s");
    assert.equal(fine.status, 204);
  } finally {
    await deleteTestUsers(sql, [user]);
  }
});

Deno.test("a function's own statement_timeout is applied to its call (hoisted, as PostgREST does)", async () => {
  // service_role has no statement_timeout of its own: only the function's 1 s can cut the 2 s sleep short.
  const { error, status } = await serviceClient().rpc(
    "conformance_roles_quick_sleep" as never,
    { seconds: 2 } as never,
  );
  assert.equal(status, 500);
  assert.equal(error?.code, "57014");
});

Deno.test("a token with a bad signature is 401 PGRST301 with WWW-Authenticate: invalid_token", async () => {
  const res = await rest("conformance_roles_probe", { token: await hs256({ role: "anon" }, "x".repeat(40)) });
  assert.equal(res.status, 401);
  assert.equal(
    res.headers.get("www-authenticate"),
    'Bearer error="invalid_token", error_description="JWT cryptographic operation failed"',
  );
  assert.deepEqual(await res.json(), {
    code: "PGRST301",
    details: null,
    hint: null,
    message: "JWT cryptographic operation failed",
  });
});

Deno.test("an expired token is 401 PGRST303 'JWT expired'", async () => {
  const { error, status } = await clientWithToken(await es256(userClaims(crypto.randomUUID()), -120))
    .from("subscription_plans").select("id");
  assert.equal(status, 401);
  assert.deepEqual(error, { code: "PGRST303", details: null, hint: null, message: "JWT expired" });
});

Deno.test("a malformed, empty or unsigned token is 401 PGRST301", async () => {
  const twoParts = await rest("conformance_roles_probe", { token: "abc.def" });
  assert.equal(twoParts.status, 401);
  assert.equal((await twoParts.json()).message, "Expected 3 parts in JWT; got 2");
  const empty = await rest("conformance_roles_probe", { headers: { authorization: "Bearer " } });
  assert.equal(empty.status, 401);
  assert.equal((await empty.json()).message, "Empty JWT is sent in Authorization header");
  const none = await rest("conformance_roles_probe", { token: unsigned({ role: "service_role" }) });
  assert.equal(none.status, 401);
  const body = await none.json();
  assert.equal(body.code, "PGRST301");
  assert.equal(body.message, "Wrong or unsupported encoding algorithm");
});

Deno.test("a role claim naming a role that does not exist is 401 (22023)", async () => {
  const res = await rest("conformance_roles_probe", { token: await hs256({ role: "no_such_role" }) });
  assert.equal(res.status, 401);
  assert.deepEqual(await res.json(), {
    code: "22023",
    details: null,
    hint: null,
    message: 'role "no_such_role" does not exist',
  });
});

Deno.test("a role claim naming a role the authenticator cannot become is 403 (42501)", async () => {
  for (const role of ["postgres", "supabase_admin", "supabase_auth_admin"]) {
    const res = await rest("conformance_roles_probe", { token: await hs256({ role }) });
    assert.equal(res.status, 403, role);
    const body = await res.json();
    assert.equal(body.code, "42501", role);
    assert.equal(body.message, `permission denied to set role "${role}"`, role);
  }
});

Deno.test("roles test teardown", async () => {
  await dropFixture(sql, FIXTURE);
  await sql.end();
});
