// The shared HTTP layer in-process: CORS allow-list and preflight, method check, one error shape,
// no internals in 500s, and secrets redacted from logs.
import assert from "node:assert/strict";
import { HttpError } from "../_shared/http/errors.ts";
import { withHttp } from "../_shared/http/with-http.ts";
import { redact } from "../_shared/platform/log.ts";

const handler = withHttp({ name: "test", methods: ["POST"] }, (req) => {
  const mode = new URL(req.url).searchParams.get("mode");
  if (mode === "http-error") throw new HttpError("payment_required", "Balance exhausted");
  if (mode === "crash") throw new Error("connect ECONNREFUSED postgres://postgres:hunter2@10.0.0.1/db");
  return new Response("done");
});

async function withOrigins<T>(value: string, fn: () => Promise<T>): Promise<T> {
  const before = Deno.env.get("CORS_ALLOWED_ORIGINS");
  Deno.env.set("CORS_ALLOWED_ORIGINS", value);
  try {
    return await fn();
  } finally {
    if (before === undefined) Deno.env.delete("CORS_ALLOWED_ORIGINS");
    else Deno.env.set("CORS_ALLOWED_ORIGINS", before);
  }
}

const preflight = (origin: string) =>
  new Request("http://x/test", {
    method: "OPTIONS",
    headers: {
      origin,
      "access-control-request-method": "POST",
      "access-control-request-headers": "authorization",
    },
  });

Deno.test("a preflight from an allowed origin gets 204 with the allowed methods and headers", async () => {
  await withOrigins("https://app.example.com, http://localhost:3000", async () => {
    const res = await handler(preflight("https://app.example.com"));
    assert.equal(res.status, 204);
    assert.equal(res.headers.get("access-control-allow-origin"), "https://app.example.com");
    assert.match(res.headers.get("access-control-allow-methods") ?? "", /POST/);
    assert.match(res.headers.get("access-control-allow-headers") ?? "", /authorization/);
    assert.equal(res.headers.get("vary"), "Origin");
  });
});

Deno.test("a preflight from an origin not on the allow-list gets 403 and no CORS headers", async () => {
  await withOrigins("https://app.example.com", async () => {
    const res = await handler(preflight("https://evil.example.com"));
    assert.equal(res.status, 403);
    assert.equal(res.headers.get("access-control-allow-origin"), null);
    assert.equal((await res.json()).error.code, "forbidden");
  });
});

Deno.test("a request from an allowed origin gets Access-Control-Allow-Origin; another origin does not", async () => {
  await withOrigins("https://app.example.com", async () => {
    const ok = await handler(
      new Request("http://x/test", { method: "POST", headers: { origin: "https://app.example.com" } }),
    );
    assert.equal(ok.headers.get("access-control-allow-origin"), "https://app.example.com");
    assert.match(ok.headers.get("access-control-expose-headers") ?? "", /x-request-id/);
    const other = await handler(
      new Request("http://x/test", { method: "POST", headers: { origin: "https://b.example" } }),
    );
    assert.equal(other.headers.get("access-control-allow-origin"), null);
  });
});

Deno.test("a method the function does not answer is a 405 in the JSON error shape", async () => {
  const res = await handler(new Request("http://x/test", { method: "DELETE" }));
  assert.equal(res.status, 405);
  assert.equal(res.headers.get("allow"), "POST");
  assert.deepEqual(await res.json(), {
    error: { code: "method_not_allowed", message: "Method DELETE not allowed" },
  });
});

Deno.test("a thrown HttpError becomes its status and code", async () => {
  const res = await handler(new Request("http://x/test?mode=http-error", { method: "POST" }));
  assert.equal(res.status, 402);
  assert.deepEqual(await res.json(), { error: { code: "payment_required", message: "Balance exhausted" } });
});

Deno.test("an unexpected error is a bare 500 with no internals in the body", async () => {
  const res = await handler(new Request("http://x/test?mode=crash", { method: "POST" }));
  const body = await res.text();
  assert.equal(res.status, 500);
  assert.deepEqual(JSON.parse(body), { error: { code: "internal_error", message: "Internal error" } });
  assert.doesNotMatch(body, /hunter2|ECONNREFUSED|postgres/);
  assert.ok(res.headers.get("x-request-id"));
});

Deno.test("redact removes tokens, API keys and URL passwords from log text", () => {
  const jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlX2hlcmU";
  const text = `auth=Bearer ${jwt} key=sk-proj-abcdefghijklmnop whsec_abcdefghijkl ` +
    "AIzaSyA1234567890abcdefghijklmnop url=postgres://postgres:hunter2@db:5432/postgres";
  const out = redact(text);
  for (
    const secret of [jwt, "sk-proj-abcdefghijklmnop", "whsec_abcdefghijkl", "AIzaSyA1234567890", "hunter2"]
  ) {
    assert.ok(!out.includes(secret), `${secret} leaked: ${out}`);
  }
  assert.match(out, /postgres:\/\/postgres:\[redacted\]@db/);
});

Deno.test("onRefused sees every refusal (the 405 included) but no success or 500, and its failure changes nothing", async () => {
  const seen: [number, string][] = [];
  const audited = withHttp({
    name: "test",
    methods: ["POST"],
    onRefused: ({ error, ctx }) => {
      seen.push([error.status, error.message]);
      assert.ok(ctx.requestId);
      return Promise.resolve();
    },
  }, (req) => {
    const mode = new URL(req.url).searchParams.get("mode");
    if (mode === "http-error") throw new HttpError("payment_required", "Balance exhausted");
    if (mode === "crash") throw new Error("boom");
    return new Response("done");
  });
  assert.equal((await audited(new Request("http://x/test", { method: "GET" }))).status, 405);
  assert.equal((await audited(new Request("http://x/test?mode=http-error", { method: "POST" }))).status, 402);
  assert.equal((await audited(new Request("http://x/test?mode=crash", { method: "POST" }))).status, 500);
  assert.equal((await audited(new Request("http://x/test", { method: "POST" }))).status, 200);
  assert.deepEqual(seen, [[405, "Method GET not allowed"], [402, "Balance exhausted"]]);

  const failing = withHttp(
    { name: "test", methods: ["POST"], onRefused: () => Promise.reject(new Error("audit store down")) },
    () => new Response("done"),
  );
  const res = await failing(new Request("http://x/test", { method: "PUT" }));
  assert.equal(res.status, 405);
  assert.equal((await res.json()).error.code, "method_not_allowed");
});
