// The local gateway behaves as the Supabase edge runtime does: JWKS published, JWT verification unless
// config.toml turns it off, the platform env vars (and nothing of the host's) in each function, and a
// changed function picked up without a restart.
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { stack } from "./_lib/stack.ts";

const FUNCTIONS = fileURLToPath(new URL("..", import.meta.url));
const CONFIG = join(FUNCTIONS, "..", "config.toml");
const anon = { authorization: `Bearer ${stack.anonKey}` };

/** Creates a throwaway function, runs `fn`, and removes it again. */
async function withTempFunction(source: string, fn: (name: string, dir: string) => Promise<void>) {
  const name = `test-tmp-${crypto.randomUUID().slice(0, 8)}`;
  const dir = join(FUNCTIONS, name);
  await Deno.mkdir(dir);
  await Deno.writeTextFile(join(dir, "index.ts"), source);
  try {
    await fn(name, dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function eventually<T>(fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T;
  do {
    last = await fn();
    if (ok(last)) return last;
    await new Promise((r) => setTimeout(r, 200));
  } while (Date.now() < deadline);
  return last;
}

const text = async (res: Response) => ({ status: res.status, body: await res.text() });

Deno.test("the gateway publishes the stack's JWKS without private key material", async () => {
  const res = await fetch(stack.jwksUrl);
  const body = await res.json();
  assert.equal(res.status, 200);
  assert.equal(body.keys.length, 1);
  assert.equal(body.keys[0].kty, "EC");
  assert.equal(body.keys[0].alg, "ES256");
  assert.equal(body.keys[0].d, undefined);
});

Deno.test("an unknown function is a 404", async () => {
  const res = await fetch(`${stack.functionsUrl}/no-such-function`, { headers: anon });
  assert.equal(res.status, 404);
  await res.body?.cancel();
});

Deno.test("a function sees the platform env vars, not the host's, and its path under its name", async () => {
  const source = `Deno.serve((req) => Response.json({
    path: new URL(req.url).pathname + new URL(req.url).search,
    url: Deno.env.get("SUPABASE_URL"),
    anon: Deno.env.get("SUPABASE_ANON_KEY") === ${JSON.stringify(stack.anonKey)},
    service: typeof Deno.env.get("SUPABASE_SERVICE_ROLE_KEY"),
    db: typeof Deno.env.get("SUPABASE_DB_URL"),
    host: Deno.env.get("KEYS_FILE") ?? null,
    forwardedFor: req.headers.get("x-forwarded-for"),
  }));`;
  await withTempFunction(source, async (name) => {
    const res = await fetch(`${stack.functionsUrl}/${name}/a/b?x=1`, { headers: anon });
    const body = await res.json();
    assert.equal(res.status, 200);
    assert.equal(body.path, `/${name}/a/b?x=1`);
    assert.equal(body.url, stack.apiUrl);
    assert.equal(body.anon, true);
    assert.equal(body.service, "string");
    assert.equal(body.db, "string");
    assert.equal(body.host, null);
    assert.equal(body.forwardedFor, "127.0.0.1");
  });
});

Deno.test("a changed function is picked up without restarting the stack", async () => {
  const version = (v: string) => `Deno.serve(() => new Response(${JSON.stringify(v)}));`;
  await withTempFunction(version("v1"), async (name, dir) => {
    const call = () => fetch(`${stack.functionsUrl}/${name}`, { headers: anon }).then(text);
    assert.deepEqual(await call(), { status: 200, body: "v1" });
    await Deno.writeTextFile(join(dir, "index.ts"), version("v2"));
    const after = await eventually(call, (r) => r.body === "v2");
    assert.deepEqual(after, { status: 200, body: "v2" });
  });
});

Deno.test("verify_jwt = false in config.toml lets a request without a token through", async () => {
  const original = await Deno.readTextFile(CONFIG);
  await withTempFunction(`Deno.serve(() => new Response("open"));`, async (name) => {
    const call = () => fetch(`${stack.functionsUrl}/${name}`).then(text);
    assert.equal((await call()).status, 401);
    try {
      await Deno.writeTextFile(CONFIG, `${original}\n[functions.${name}]\nverify_jwt = false\n`);
      const open = await eventually(call, (r) => r.status === 200);
      assert.deepEqual(open, { status: 200, body: "open" });
    } finally {
      await Deno.writeTextFile(CONFIG, original);
    }
    const closed = await eventually(call, (r) => r.status === 401);
    assert.equal(closed.status, 401);
  });
});

Deno.test("OPTIONS preflights reach the function without a token", async () => {
  await withTempFunction(`Deno.serve((req) => new Response(req.method, { status: 200 }));`, async (name) => {
    const res = await fetch(`${stack.functionsUrl}/${name}`, { method: "OPTIONS" });
    assert.deepEqual(await text(res), { status: 200, body: "OPTIONS" });
  });
});

Deno.test("a function that fails to boot answers 503 and does not take the gateway down", async () => {
  await withTempFunction(`throw new Error("boom");`, async (name) => {
    const res = await fetch(`${stack.functionsUrl}/${name}`, { headers: anon });
    assert.equal(res.status, 503);
    await res.body?.cancel();
    const health = await fetch(`${stack.functionsUrl}/health`, { headers: anon });
    assert.equal(health.status, 200);
    await health.body?.cancel();
  });
});
