// The health function over HTTP through the local gateway: the model for every later function.
import assert from "node:assert/strict";
import { stack } from "./_lib/stack.ts";
import { es256, hs256, unsigned, userClaims } from "./_lib/tokens.ts";

const url = `${stack.functionsUrl}/health`;
const get = (headers: HeadersInit = {}, init: RequestInit = {}) => fetch(url, { headers, ...init });
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

Deno.test("health answers 200 with the anon key and reports the database and Redis up", async () => {
  const res = await get(bearer(stack.anonKey));
  const body = await res.json();
  assert.equal(res.status, 200);
  assert.equal(body.status, "ok");
  assert.equal(body.checks.database.status, "ok");
  assert.equal(body.checks.redis.status, "ok");
  assert.equal(typeof body.checks.database.latency_ms, "number");
});

Deno.test("health rejects a request without a token with 401 (verify_jwt)", async () => {
  const res = await get();
  assert.equal(res.status, 401);
  await res.body?.cancel();
});

Deno.test("health rejects forged, expired and unsigned tokens with 401", async () => {
  const tokens = [
    await hs256({ role: "anon" }, "not-the-project-secret-but-long-enough-to-sign"),
    await hs256({ role: "anon" }, stack.jwtSecret, -60),
    unsigned({ role: "service_role" }),
  ];
  for (const token of tokens) {
    const res = await get(bearer(token));
    assert.equal(res.status, 401, token);
    await res.body?.cancel();
  }
});

Deno.test("health accepts a user token signed with the project's asymmetric key (JWKS)", async () => {
  const res = await get(bearer(await es256(userClaims(crypto.randomUUID()))));
  assert.equal(res.status, 200);
  await res.body?.cancel();
});

Deno.test("health answers other methods with 405, an Allow header and the JSON error shape", async () => {
  const res = await get(bearer(stack.anonKey), { method: "POST", body: "{}" });
  assert.equal(res.status, 405);
  assert.match(res.headers.get("allow") ?? "", /GET/);
  assert.deepEqual(await res.json(), {
    error: { code: "method_not_allowed", message: "Method POST not allowed" },
  });
});

Deno.test("health sends security headers, no-store and a request id", async () => {
  const res = await get(bearer(stack.anonKey));
  await res.body?.cancel();
  assert.equal(res.headers.get("x-content-type-options"), "nosniff");
  assert.equal(res.headers.get("x-frame-options"), "DENY");
  assert.equal(res.headers.get("cache-control"), "no-store");
  assert.match(res.headers.get("content-security-policy") ?? "", /default-src 'none'/);
  assert.match(res.headers.get("x-request-id") ?? "", /^[0-9a-f-]{36}$/);
});

Deno.test("health echoes a well-formed x-request-id and replaces a malformed one", async () => {
  const good = await get({ ...bearer(stack.anonKey), "x-request-id": "req_abc123456" });
  await good.body?.cancel();
  assert.equal(good.status, 200);
  assert.equal(good.headers.get("x-request-id"), "req_abc123456");
  const bad = await get({ ...bearer(stack.anonKey), "x-request-id": "<script>" });
  await bad.body?.cancel();
  assert.notEqual(bad.headers.get("x-request-id"), "<script>");
});
