// The local Upstash REST endpoint (scripts/stack/upstash-rest.ts) driven by the real clients:
// @upstash/redis and @upstash/ratelimit, plus raw HTTP for what the clients hide (status codes, encoding).
import assert from "node:assert/strict";
// Pinned inline as the brief asks; deno.json has no import map for them.
import { Redis } from "npm:@upstash/redis@1.39.0";
import { Ratelimit } from "npm:@upstash/ratelimit@2.2.0";
import { stack } from "./_lib/stack.ts";

const baseUrl = stack.upstashUrl.replace(/\/$/, "");

function client(opts: { token?: string; base64?: boolean; autoPipeline?: boolean } = {}): Redis {
  return new Redis({
    url: baseUrl,
    token: opts.token ?? stack.upstashToken,
    responseEncoding: opts.base64 === false ? false : "base64",
    enableAutoPipelining: opts.autoPipeline ?? true,
    enableTelemetry: false,
    retry: false,
  });
}

/** A key prefix of its own for every test, so tests never see each other's keys. */
function prefix(name: string): string {
  return `test:upstash-rest:${name}:${crypto.randomUUID()}`;
}

async function cleanup(redis: Redis, keyPrefix: string): Promise<void> {
  let cursor: string | number = "0";
  do {
    const [next, keys]: [string | number, string[]] = await redis.scan(cursor, {
      match: `${keyPrefix}*`,
      count: 1000,
    });
    if (keys.length > 0) await redis.del(...keys);
    cursor = next;
  } while (String(cursor) !== "0");
}

interface RawResponse {
  status: number;
  body: unknown;
}

async function raw(path: string, init: RequestInit & { token?: string | null } = {}): Promise<RawResponse> {
  const headers = new Headers(init.headers);
  const token = init.token === undefined ? stack.upstashToken : init.token;
  if (token !== null && !headers.has("authorization")) headers.set("authorization", `Bearer ${token}`);
  const res = await fetch(`${baseUrl}${path}`, { ...init, headers });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // keep the text
  }
  return { status: res.status, body };
}

function post(path: string, body: unknown, headers: Record<string, string> = {}) {
  return raw(path, {
    method: "POST",
    body: typeof body === "string" ? body : JSON.stringify(body),
    headers: { "content-type": "application/json", ...headers },
  });
}

function base64ToBytes(b64: string): Uint8Array {
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

async function sha1Hex(text: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-1", new TextEncoder().encode(text)));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

// --- authentication -------------------------------------------------------------------------------------

Deno.test("upstash endpoint: rejects a wrong token with 401 like Upstash", async () => {
  const res = await post("/", ["PING"], { authorization: "Bearer not-the-token" });
  assert.equal(res.status, 401);
  assert.deepEqual(res.body, { error: "Unauthorized" });

  const prefixed = await post("/", ["PING"], { authorization: `Bearer ${stack.upstashToken}x` });
  assert.equal(prefixed.status, 401, "a token that only starts with the right token is rejected");

  await assert.rejects(client({ token: "not-the-token" }).ping(), /Unauthorized/);
});

Deno.test("upstash endpoint: rejects a missing token or a non-Bearer scheme with 401", async () => {
  const missing = await raw("/ping", { token: null });
  assert.equal(missing.status, 401);
  assert.deepEqual(missing.body, { error: "Unauthorized" });

  const basic = await raw("/ping", {
    token: null,
    headers: { authorization: `Basic ${stack.upstashToken}` },
  });
  assert.equal(basic.status, 401);

  const ok = await raw("/ping");
  assert.equal(ok.status, 200);
  assert.deepEqual(ok.body, { result: "PONG" });
});

// --- request validation ---------------------------------------------------------------------------------

Deno.test("upstash endpoint: invalid JSON, non-array and empty bodies are 400 with an error", async () => {
  for (
    const [path, body] of [
      ["/", "[bad"],
      ["/", '{"a":1}'],
      ["/", "[]"],
      ["/", ""],
      ["/pipeline", "[1]"],
      [
        "/pipeline",
        "[]",
      ],
      ["/multi-exec", '"SET"'],
      ["/", '["SET", {"a": 1}, "x"]'],
    ]
  ) {
    const res = await post(path, body);
    assert.equal(res.status, 400, `${path} ${body}`);
    const error = (res.body as { error?: unknown }).error;
    assert.equal(typeof error, "string", `${path} ${body}: ${JSON.stringify(res.body)}`);
    assert.ok((error as string).length > 0);
  }
});

Deno.test("upstash endpoint: unknown routes are 404 and bodies over 10 MB are 413", async () => {
  assert.equal((await raw("/pipeline/extra")).status, 404);
  assert.equal((await raw("/multi-exec/extra", { method: "POST", body: "[]" })).status, 404);
  assert.equal((await raw("/")).status, 404);

  const big = await raw("/set/" + prefix("big"), {
    method: "POST",
    body: new Uint8Array(10 * 1024 * 1024 + 1),
  });
  assert.equal(big.status, 413);
  assert.equal(typeof (big.body as { error?: unknown }).error, "string");

  // Without a Content-Length (chunked), the limit holds while reading.
  let sent = 0;
  const chunk = new Uint8Array(1024 * 1024);
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent > 11 * 1024 * 1024) return controller.close();
      sent += chunk.length;
      controller.enqueue(chunk);
    },
  });
  const chunked = await raw("/set/" + prefix("big"), { method: "POST", body: stream });
  assert.equal(chunked.status, 413);
});

Deno.test("upstash endpoint: a Redis error on a single command is 400 carrying the Redis message", async () => {
  const key = prefix("err");
  const redis = client();
  try {
    await redis.set(key, "not a number");
    const res = await post("/", ["INCR", key]);
    assert.equal(res.status, 400);
    assert.deepEqual(res.body, { error: "ERR value is not an integer or out of range" });
    await assert.rejects(redis.incr(key), /ERR value is not an integer/);

    const unknown = await post("/", ["NOSUCHCOMMAND", key]);
    assert.equal(unknown.status, 400);
    assert.match(String((unknown.body as { error: string }).error), /^ERR unknown command/);
  } finally {
    await cleanup(redis, key);
  }
});

Deno.test("upstash endpoint: the path form runs commands and appends a POST body as the last argument", async () => {
  const key = prefix("path");
  const redis = client();
  try {
    assert.deepEqual((await raw(`/set/${encodeURIComponent(key)}/plain`)).body, { result: "OK" });
    assert.deepEqual((await raw(`/get/${encodeURIComponent(key)}`)).body, { result: "plain" });
    const set = await raw(`/set/${encodeURIComponent(key)}?EX=100`, { method: "POST", body: "from body" });
    assert.deepEqual(set.body, { result: "OK" });
    assert.equal(await redis.get(key), "from body");
    const ttl = await redis.ttl(key);
    assert.ok(ttl > 90 && ttl <= 100, `ttl ${ttl}`);
  } finally {
    await cleanup(redis, key);
  }
});

// --- @upstash/redis single commands ----------------------------------------------------------------------

Deno.test("@upstash/redis: set/get/incr/hset/hgetall round trip with automatic deserialization", async () => {
  const p = prefix("basic");
  const redis = client();
  try {
    assert.equal(await redis.set(`${p}:s`, "hello", { ex: 60 }), "OK");
    assert.equal(await redis.get(`${p}:s`), "hello");
    assert.equal(await redis.get(`${p}:missing`), null);

    // Objects are stored as JSON and parsed back by the client.
    const doc = { name: "Ada", tags: ["x", "y"], nested: { n: 1.5, ok: true, none: null } };
    await redis.set(`${p}:json`, doc);
    assert.deepEqual(await redis.get(`${p}:json`), doc);

    assert.equal(await redis.incr(`${p}:n`), 1);
    assert.equal(await redis.incrby(`${p}:n`, 41), 42);
    assert.equal(await redis.get(`${p}:n`), 42, "a numeric string comes back as a number");

    assert.equal(await redis.hset(`${p}:h`, { a: "1", b: "text", c: { deep: [1, 2] } }), 3);
    assert.deepEqual(await redis.hgetall(`${p}:h`), { a: 1, b: "text", c: { deep: [1, 2] } });
    assert.equal(await redis.hget(`${p}:h`, "b"), "text");

    assert.equal(await redis.exists(`${p}:s`, `${p}:json`, `${p}:nope`), 2);
    assert.equal(await redis.type(`${p}:h`), "hash");
    assert.deepEqual(await redis.mget(`${p}:s`, `${p}:nope`, `${p}:n`), ["hello", null, 42]);
    assert.equal(await redis.del(`${p}:s`), 1);
    assert.equal(await redis.get(`${p}:s`), null);
  } finally {
    await cleanup(redis, p);
  }
});

Deno.test("@upstash/redis: unicode values round trip with and without base64 response encoding", async () => {
  const p = prefix("unicode");
  const value = 'héllo wörld — 日本語 🚀 \u0000 nul, "quotes" and \\ backslash\nnewline';
  const base64Client = client();
  const plainClient = client({ base64: false });
  try {
    await base64Client.set(`${p}:a`, value);
    assert.equal(await base64Client.get(`${p}:a`), value);
    assert.equal(await plainClient.get(`${p}:a`), value);
    assert.deepEqual(await base64Client.mget(`${p}:a`, `${p}:none`), [value, null]);
    assert.deepEqual(await base64Client.lrange(`${p}:none`, 0, -1), []);
    await base64Client.rpush(`${p}:l`, value, "OK", "plain");
    assert.deepEqual(await base64Client.lrange(`${p}:l`, 0, -1), [value, "OK", "plain"]);

    // On the wire: with the header, strings (also inside arrays) are base64 of the UTF-8 bytes.
    const encoded = await post("/", ["GET", `${p}:a`], { "upstash-encoding": "base64" });
    const expected = new TextEncoder().encode(value);
    assert.deepEqual(base64ToBytes((encoded.body as { result: string }).result), expected);
    const list = await post("/", ["LRANGE", `${p}:l`, 0, -1], { "upstash-encoding": "base64" });
    assert.deepEqual(
      (list.body as { result: string[] }).result.map((s) => new TextDecoder().decode(base64ToBytes(s))),
      [value, "OK", "plain"],
    );
    const plain = await post("/", ["GET", `${p}:a`]);
    assert.deepEqual(plain.body, { result: value });
    // A top-level "OK" stays plain (the client keeps it as is); other status replies are encoded.
    assert.deepEqual((await post("/", ["SET", `${p}:b`, "x"], { "upstash-encoding": "base64" })).body, {
      result: "OK",
    });
    assert.deepEqual((await post("/", ["PING"], { "upstash-encoding": "base64" })).body, {
      result: btoa("PONG"),
    });
  } finally {
    await cleanup(base64Client, p);
  }
});

Deno.test("upstash endpoint: arbitrary binary bytes survive a path-form POST and a base64 GET", async () => {
  const key = prefix("binary");
  const bytes = new Uint8Array(70_000);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7919 + 13) % 256; // includes 0x00, 0x0d, 0x0a, 0xff
  const redis = client();
  try {
    const set = await raw(`/set/${encodeURIComponent(key)}`, { method: "POST", body: bytes });
    assert.deepEqual(set.body, { result: "OK" });
    assert.equal(await redis.strlen(key), bytes.length);
    const got = await post("/", ["GET", key], { "upstash-encoding": "base64" });
    assert.equal(got.status, 200);
    assert.deepEqual(base64ToBytes((got.body as { result: string }).result), bytes);
  } finally {
    await cleanup(redis, key);
  }
});

// --- pipelines and transactions -------------------------------------------------------------------------

Deno.test("@upstash/redis pipeline round trip", async () => {
  const p = prefix("pipeline");
  const redis = client();
  try {
    const results = await redis.pipeline()
      .set(`${p}:a`, "1")
      .incr(`${p}:a`)
      .get(`${p}:a`)
      .hset(`${p}:h`, { f: { x: 1 } })
      .hgetall(`${p}:h`)
      .get(`${p}:missing`)
      .exec();
    assert.deepEqual(results, ["OK", 2, 2, 1, { f: { x: 1 } }, null]);

    // One failing command does not stop the others; the client reports it per command.
    await redis.set(`${p}:s`, "text");
    const kept = await redis.pipeline().incr(`${p}:s`).incr(`${p}:c`).exec({ keepErrors: true });
    assert.match(String(kept[0].error), /ERR value is not an integer/);
    assert.equal(kept[1].error, undefined);
    assert.equal(kept[1].result, 1);
    await assert.rejects(redis.pipeline().incr(`${p}:s`).exec(), /Command 1 \[ incr \] failed/);

    // Large replies arrive over many socket reads.
    const items = Array.from({ length: 5000 }, (_, i) => `item-${i}-${"é".repeat(i % 50)}`);
    const big = await redis.pipeline().rpush(`${p}:big`, ...items).lrange(`${p}:big`, 0, -1).exec();
    assert.deepEqual(big, [items.length, items]);

    // The wire shape: an array of {result} / {error}.
    const wire = await post("/pipeline", [["SET", `${p}:w`, "v"], ["INCR", `${p}:w`], ["GET", `${p}:w`]]);
    assert.equal(wire.status, 200);
    assert.deepEqual(wire.body, [
      { result: "OK" },
      { error: "ERR value is not an integer or out of range" },
      { result: "v" },
    ]);
  } finally {
    await cleanup(redis, p);
  }
});

Deno.test("@upstash/redis multi() runs as one MULTI/EXEC transaction", async () => {
  const p = prefix("multi");
  const redis = client();
  try {
    const results = await redis.multi()
      .set(`${p}:n`, 10)
      .incr(`${p}:n`)
      .incrby(`${p}:n`, 5)
      .get(`${p}:n`)
      .sadd(`${p}:set`, "a", "b")
      .smembers(`${p}:set`)
      .exec();
    assert.equal(results.length, 6);
    assert.deepEqual(results.slice(0, 5), ["OK", 11, 16, 16, 2]);
    assert.deepEqual([...(results[5] as string[])].sort(), ["a", "b"]);

    // A command that fails at run time fails alone; the rest of the transaction still runs.
    await redis.set(`${p}:s`, "text");
    await assert.rejects(
      redis.multi().incr(`${p}:s`).set(`${p}:after`, "ran").exec(),
      /Command 1 \[ incr \] failed/,
    );
    assert.equal(await redis.get(`${p}:after`), "ran");

    // A command that cannot be queued aborts the whole transaction: nothing runs, answer is 400.
    const aborted = await post("/multi-exec", [["SET", `${p}:never`, "x"], ["SET", `${p}:never`]]);
    assert.equal(aborted.status, 400);
    assert.match(String((aborted.body as { error: string }).error), /EXECABORT/);
    assert.equal(await redis.exists(`${p}:never`), 0);

    // MULTI/EXEC are not single commands over REST.
    const nested = await post("/", ["MULTI"]);
    assert.equal(nested.status, 400);
    assert.equal(await redis.set(`${p}:still-works`, "1"), "OK");
  } finally {
    await cleanup(redis, p);
  }
});

Deno.test("@upstash/redis multi() is atomic: concurrent transactions never interleave", async () => {
  const p = prefix("atomic");
  const redis = client({ autoPipeline: false });
  try {
    // Each transaction appends its own tag 8 times; interleaving would break up a block of 8.
    const runs = 25;
    const perRun = 8;
    await Promise.all(
      Array.from({ length: runs }, (_, i) => {
        const tx = redis.multi();
        for (let k = 0; k < perRun; k++) tx.rpush(`${p}:l`, `t${i}`);
        return tx.exec();
      }),
    );
    const list = await redis.lrange<string>(`${p}:l`, 0, -1);
    assert.equal(list.length, runs * perRun);
    // And every command of a transaction ran on one and the same Redis connection.
    await Promise.all(Array.from({ length: 5 }, () => redis.set(`${p}:warm`, "1"))); // several pooled connections
    const ids = await post("/multi-exec", Array.from({ length: 6 }, () => ["CLIENT", "ID"]));
    assert.equal(ids.status, 200);
    const connectionIds = (ids.body as { result: number }[]).map((e) => e.result);
    assert.equal(connectionIds.length, 6);
    assert.equal(new Set(connectionIds).size, 1, `one connection: ${connectionIds}`);
    for (let i = 0; i < list.length; i += perRun) {
      assert.deepEqual(list.slice(i, i + perRun), Array(perRun).fill(list[i]), `block at ${i}`);
    }
  } finally {
    await cleanup(redis, p);
  }
});

// --- scripts --------------------------------------------------------------------------------------------

Deno.test("@upstash/redis eval, scriptLoad and evalsha run Lua on Redis", async () => {
  const p = prefix("eval");
  const redis = client();
  try {
    const echo = "return {KEYS[1], ARGV[1], tonumber(ARGV[2]) + 1, redis.call('SET', KEYS[1], ARGV[1])}";
    assert.deepEqual(await redis.eval(echo, [`${p}:k`], ["välue", 41]), [`${p}:k`, "välue", 42, "OK"]);
    assert.equal(await redis.get(`${p}:k`), "välue");

    const incr = `return redis.call('INCRBY', KEYS[1], ARGV[1]) -- ${crypto.randomUUID()}`;
    const sha = await redis.scriptLoad(incr);
    assert.equal(sha, await sha1Hex(incr));
    assert.equal(await redis.evalsha(sha, [`${p}:c`], [5]), 5);
    assert.equal(await redis.evalsha(sha, [`${p}:c`], [5]), 10);
    assert.deepEqual(await redis.scriptExists(sha, "0".repeat(40)), [1, 0]);

    await assert.rejects(redis.evalsha("f".repeat(40), [], []), /NOSCRIPT/);
    const wire = await post("/", ["EVALSHA", "f".repeat(40), 0]);
    assert.equal(wire.status, 400);
    assert.match(String((wire.body as { error: string }).error), /^NOSCRIPT/);

    // createScript: EVALSHA first, EVAL when Redis answers NOSCRIPT.
    const script = redis.createScript<string>(`return ARGV[1] .. '-' .. '${crypto.randomUUID()}'`);
    assert.match(await script.exec([], ["fresh"]), /^fresh-/);
    assert.match(await script.exec([], ["cached"]), /^cached-/);

    const failing = await post("/", ["EVAL", "return redis.call('INCR', KEYS[1])", 1, `${p}:k`]);
    assert.equal(failing.status, 400);
    assert.match(String((failing.body as { error: string }).error), /not an integer/);
  } finally {
    await cleanup(redis, p);
  }
});

Deno.test("upstash endpoint: accepts Upstash's '#!lua flags=allow-key-locking' scripts under their own SHA-1", async () => {
  const p = prefix("shebang");
  const redis = client();
  try {
    const body =
      `#!lua flags=allow-key-locking\nreturn redis.call('INCRBY', KEYS[1], ARGV[1]) -- ${crypto.randomUUID()}`;
    const clientSha = await sha1Hex(body);
    await assert.rejects(redis.evalsha(clientSha, [`${p}:n`], [1]), /NOSCRIPT/);
    assert.equal(await redis.eval(body, [`${p}:n`], [1]), 1);
    assert.equal(await redis.evalsha(clientSha, [`${p}:n`], [2]), 3, "EVALSHA with the client's SHA-1 works");
    assert.deepEqual(await redis.scriptExists(clientSha), [1]);

    const loaded = `#!lua flags=no-writes,allow-key-locking\nreturn ARGV[1] -- ${crypto.randomUUID()}`;
    assert.equal(await redis.scriptLoad(loaded), await sha1Hex(loaded));
    assert.equal(await redis.evalsha(await sha1Hex(loaded), [], ["ro"]), "ro");

    // Flags Redis does not know and Upstash does not add still fail like on Redis.
    const bogus = await post("/", ["EVAL", "#!lua flags=no-such-flag\nreturn 1", 0]);
    assert.equal(bogus.status, 400);
    assert.match(String((bogus.body as { error: string }).error), /shebang/);
  } finally {
    await cleanup(redis, p);
  }
});

// --- @upstash/ratelimit ---------------------------------------------------------------------------------

type Limiter = ConstructorParameters<typeof Ratelimit>[0]["limiter"];

function ratelimit(limiter: Limiter, keyPrefix: string, redis = client()): Ratelimit {
  return new Ratelimit({ redis, limiter, prefix: keyPrefix, ephemeralCache: false, analytics: false });
}

async function allowsExactly(rl: Ratelimit, limit: number, windowMs: number): Promise<void> {
  for (let i = 0; i < limit; i++) {
    const started = Date.now();
    const res = await rl.limit("user-1");
    await res.pending;
    assert.equal(res.success, true, `request ${i + 1} of ${limit} is allowed`);
    assert.equal(res.reason, undefined, "answered by Redis, not by a timeout or a cache");
    assert.equal(res.limit, limit);
    assert.equal(res.remaining, limit - i - 1);
    assert.ok(res.reset > started - 1000 && res.reset <= started + windowMs + 1000, `reset ${res.reset}`);
  }
  const now = Date.now();
  const denied = await rl.limit("user-1");
  assert.equal(denied.success, false, `request ${limit + 1} is denied`);
  assert.equal(denied.reason, undefined);
  assert.equal(denied.remaining, 0);
  assert.ok(
    denied.reset > now && denied.reset <= now + windowMs + 1000,
    `reset ${denied.reset} after ${now}`,
  );
  // Another identifier has its own budget.
  assert.equal((await rl.limit("user-2")).success, true);
}

Deno.test("@upstash/ratelimit fixedWindow allows exactly the limit, then denies with a reset time", async () => {
  const p = prefix("fixed");
  try {
    await allowsExactly(ratelimit(Ratelimit.fixedWindow(5, "60 s"), p), 5, 60_000);
  } finally {
    await cleanup(client(), p);
  }
});

Deno.test("@upstash/ratelimit slidingWindow allows exactly the limit, then denies with a reset time", async () => {
  const p = prefix("sliding");
  try {
    await allowsExactly(ratelimit(Ratelimit.slidingWindow(4, "60 s"), p), 4, 60_000);
  } finally {
    await cleanup(client(), p);
  }
});

Deno.test("@upstash/ratelimit tokenBucket allows exactly the bucket size, then denies with a reset time", async () => {
  const p = prefix("bucket");
  try {
    await allowsExactly(ratelimit(Ratelimit.tokenBucket(1, "60 s", 6), p), 6, 60_000);
  } finally {
    await cleanup(client(), p);
  }
});

Deno.test("@upstash/ratelimit: 30 concurrent limit() calls with limit 10 allow exactly 10", async () => {
  const limiters: [string, Limiter][] = [
    ["fixedWindow", Ratelimit.fixedWindow(10, "60 s")],
    ["slidingWindow", Ratelimit.slidingWindow(10, "60 s")],
    ["tokenBucket", Ratelimit.tokenBucket(1, "60 s", 10)],
  ];
  for (const autoPipeline of [false, true]) {
    for (const [name, limiter] of limiters) {
      const p = prefix(`concurrent-${name}`);
      try {
        // Without auto-pipelining every call is its own HTTP request, racing the others on the endpoint.
        const rl = ratelimit(limiter, p, client({ autoPipeline }));
        const results = await Promise.all(Array.from({ length: 30 }, () => rl.limit("shared-id")));
        assert.equal(results.filter((r) => r.reason === "timeout").length, 0, `${name}: no timeouts`);
        assert.equal(
          results.filter((r) => r.success).length,
          10,
          `${name} (autoPipeline ${autoPipeline}) allows exactly 10 of 30`,
        );
      } finally {
        await cleanup(client(), p);
      }
    }
  }
});

// --- failure handling and shutdown (own instance, pointed at a port where no Redis listens) -----------------

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

Deno.test("upstash endpoint: Redis down gives 503 with an error, and SIGTERM stops the server cleanly", async () => {
  const port = freePort();
  const token = crypto.randomUUID();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", new URL("../../../scripts/stack/upstash-rest.ts", import.meta.url).pathname],
    env: { UPSTASH_PORT: String(port), REDIS_PORT: String(freePort()), UPSTASH_TOKEN: token },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const output = child.output();
  let exited = false;
  try {
    let res: Response | undefined;
    for (let i = 0; i < 100 && !res; i++) {
      res = await fetch(`http://127.0.0.1:${port}/`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}` },
        body: JSON.stringify(["PING"]),
      }).catch(() => undefined);
      if (!res) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(res, "the endpoint came up");
    assert.equal(res.status, 503);
    const body = await res.json();
    assert.match(String(body.error), /Redis/);

    const piped = await fetch(`http://127.0.0.1:${port}/pipeline`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}` },
      body: JSON.stringify([["PING"]]),
    });
    assert.equal(piped.status, 503);
    await piped.body?.cancel();

    // Still serving after the failures.
    const again = await fetch(`http://127.0.0.1:${port}/ping`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(again.status, 503);
    await again.body?.cancel();

    child.kill("SIGTERM");
    const out = await output;
    exited = true;
    assert.equal(out.code, 0, "exits 0 on SIGTERM");
    const lines = new TextDecoder().decode(out.stderr).split("\n").filter((l) => l.trim() !== "");
    const logged = lines.map((l) => JSON.parse(l) as { status?: number; level?: string });
    assert.equal(
      logged.filter((l) => l.status === 503 && l.level === "error").length,
      3,
      "one JSON line per error",
    );
  } finally {
    if (!exited) {
      try {
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
      await output;
    }
  }
});
