// Who a request runs as, and with what, as PostgREST sets it up: one transaction per request on the
// `authenticator` connection, the JWT's role claim (anon key → anon, user token → authenticated, service key →
// service_role) set locally, request.jwt.claims / method / path / headers / cookies, the role's own settings
// (statement_timeout), the search path; and the 401s for tokens that are missing a signature, expired, or bad.
import assert from "node:assert/strict";
import { createTestUser, deleteTestUsers, testSql, type TestUser } from "./_lib/db.ts";
import { anon, asService, asUser, dropFixtures, installFixtures, rest } from "./_lib/rest-conformance.ts";
import { stack } from "./_lib/stack.ts";
import { es256, hs256, unsigned, userClaims } from "./_lib/tokens.ts";

const sql = testSql(2);
const users: TestUser[] = [];
await installFixtures(sql);

/** current_setting(name) inside the request's transaction, through supabase-js. */
async function setting(client: ReturnType<typeof anon>, name: string): Promise<string | null> {
  const { data, error } = await client.rpc("conformance_guc", { name });
  assert.equal(error, null, JSON.stringify(error));
  return data as string | null;
}

Deno.test("the anon key runs as anon, with its claims as request.jwt.claims", async () => {
  assert.equal(await setting(anon(), "role"), "anon");
  const claims = JSON.parse((await setting(anon(), "request.jwt.claims"))!);
  assert.equal(claims.role, "anon");
  assert.equal(await setting(anon(), "is_superuser"), "off");
  assert.equal(await setting(anon(), "session_authorization"), "authenticator", "connected as authenticator");
});

Deno.test("a user token runs as authenticated; auth.uid() is its sub", async () => {
  const user = await createTestUser(sql);
  users.push(user);
  const client = asUser(await es256(userClaims(user.id, user.email)));
  assert.equal(await setting(client, "role"), "authenticated");
  const claims = JSON.parse((await setting(client, "request.jwt.claims"))!);
  assert.equal(claims.sub, user.id);
  assert.equal(claims.email, user.email);
  assert.equal(claims.role, "authenticated");
});

Deno.test("the service key runs as service_role", async () => {
  assert.equal(await setting(asService(), "role"), "service_role");
});

Deno.test("a request with the apikey but no Authorization runs as the anonymous role", async () => {
  const res = await rest("/rpc/conformance_guc?name=role", { token: null });
  assert.equal(res.status, 200);
  assert.equal(await res.json(), "anon");
  const claims = await rest("/rpc/conformance_guc?name=request.jwt.claims", { token: null });
  assert.deepEqual(JSON.parse(await claims.json()), { role: "anon" });
});

Deno.test("a token without a role claim runs as the anonymous role", async () => {
  const token = await hs256({ sub: "someone" });
  const res = await rest("/rpc/conformance_guc?name=role", { token });
  assert.equal(await res.json(), "anon");
});

Deno.test("request.method, request.path, request.headers (lower-case JSON) and request.cookies are set", async () => {
  const res = await rest("/rpc/conformance_guc?name=request.headers", {
    headers: { "X-Conformance-Header": "Yes Please", cookie: "a=1; b=two" },
  });
  const headers = JSON.parse(await res.json());
  assert.equal(headers["x-conformance-header"], "Yes Please");
  assert.equal(headers.apikey, stack.anonKey);
  assert.equal(headers.cookie, undefined, "cookies are not headers");
  const cookies = await rest("/rpc/conformance_guc?name=request.cookies", {
    headers: { cookie: "a=1; b=two" },
  });
  assert.deepEqual(JSON.parse(await cookies.json()), { a: "1", b: "two" });
  const method = await rest("/rpc/conformance_guc?name=request.method");
  assert.equal(await method.json(), "GET");
  const post = await anon().rpc("conformance_guc", { name: "request.method" });
  assert.equal(post.data, "POST");
  const path = await rest("/rpc/conformance_guc?name=request.path");
  assert.equal(await path.json(), "/rpc/conformance_guc");
});

Deno.test("the search path is the exposed schema then config.toml's extra_search_path", async () => {
  assert.equal(await setting(anon(), "search_path"), '"public", "public", "extensions"');
});

Deno.test("each role's own settings apply as PostgREST 12 applies them: statement_timeout 3s / 8s", async () => {
  const user = await createTestUser(sql);
  users.push(user);
  assert.equal(await setting(anon(), "statement_timeout"), "3s");
  assert.equal(await setting(asUser(await es256(userClaims(user.id))), "statement_timeout"), "8s");
  assert.equal(await setting(asService(), "statement_timeout"), "0", "service_role has none of its own");
});

Deno.test("anon's 3s statement_timeout cuts off a longer statement: 500 57014", async () => {
  const started = Date.now();
  const { error, status } = await anon().rpc("conformance_nap", { seconds: 4 });
  const took = Date.now() - started;
  assert.equal(status, 500);
  assert.equal(error?.code, "57014");
  assert.equal(error?.message, "canceling statement due to statement timeout");
  // Cut at its 3 s, not sooner (no upper bound: wall-clock upper bounds are flaky under load).
  assert.ok(took >= 2900, `cut off after ${took} ms`);
});

Deno.test("authenticated's longer 8s timeout lets the same 4s statement finish", async () => {
  const user = await createTestUser(sql);
  users.push(user);
  const { data, error } = await asUser(await es256(userClaims(user.id))).rpc("conformance_nap", {
    seconds: 4,
  });
  assert.deepEqual([data, error], ["slept 4", null]);
});

Deno.test("each request is its own transaction: settings and role do not leak to the next one", async () => {
  const user = await createTestUser(sql);
  users.push(user);
  const client = asUser(await es256(userClaims(user.id)));
  for (let i = 0; i < 5; i++) {
    assert.equal(await setting(client, "role"), "authenticated");
    assert.equal(await setting(anon(), "role"), "anon");
    assert.equal(JSON.parse((await setting(anon(), "request.jwt.claims"))!).sub, undefined);
  }
});

// ----------------------------------------------------------------------------------------- bad tokens
async function refused(token: string) {
  const res = await rest("/conformance_works?select=id", { token });
  return { status: res.status, body: await res.json(), wwwAuthenticate: res.headers.get("www-authenticate") };
}

Deno.test("a token signed with another secret is 401 PGRST301 with WWW-Authenticate", async () => {
  const r = await refused(await hs256({ role: "anon" }, "not-the-project-secret-but-long-enough-to-sign"));
  assert.equal(r.status, 401);
  assert.deepEqual(r.body, {
    code: "PGRST301",
    details: null,
    hint: null,
    message: "JWT cryptographic operation failed",
  });
  assert.equal(
    r.wwwAuthenticate,
    'Bearer error="invalid_token", error_description="JWT cryptographic operation failed"',
  );
});

Deno.test("an expired token is 401 PGRST303 'JWT expired'", async () => {
  const r = await refused(await hs256({ role: "anon" }, stack.jwtSecret, -600));
  assert.equal(r.status, 401);
  assert.deepEqual(r.body, { code: "PGRST303", details: null, hint: null, message: "JWT expired" });
  assert.equal(r.wwwAuthenticate, 'Bearer error="invalid_token", error_description="JWT expired"');
});

Deno.test("an unsigned (alg none), malformed or empty token is 401 PGRST301", async () => {
  const none = await refused(unsigned({ role: "service_role" }));
  assert.equal(none.status, 401);
  assert.equal(none.body.code, "PGRST301");
  const parts = await refused("abc.def");
  assert.deepEqual([parts.status, parts.body.code, parts.body.message], [
    401,
    "PGRST301",
    "Expected 3 parts in JWT; got 2",
  ]);
  const res = await rest("/conformance_works", { headers: { authorization: "Bearer " }, token: null });
  assert.equal(res.status, 401);
  assert.deepEqual(await res.json(), {
    code: "PGRST301",
    details: null,
    hint: null,
    message: "Empty JWT is sent in Authorization header",
  });
});

Deno.test("a role claim that is no database role is 401 22023; one not granted to authenticator is 403 42501", async () => {
  const missing = await refused(await hs256({ role: "no_such_role" }));
  assert.equal(missing.status, 401);
  assert.deepEqual(missing.body, {
    code: "22023",
    details: null,
    hint: null,
    message: 'role "no_such_role" does not exist',
  });
  const notGranted = await refused(await hs256({ role: "postgres" }));
  assert.equal(notGranted.status, 403);
  assert.equal(notGranted.body.code, "42501");
  assert.equal(notGranted.body.message, 'permission denied to set role "postgres"');
});

Deno.test("rest roles teardown", async () => {
  await deleteTestUsers(sql, users);
  await dropFixtures(sql);
  await sql.end();
});
