// _shared/http/validation.ts: the body limits (413 by Content-Length before reading, and by counting a streamed
// body), the content type (415), bad JSON and schema errors (400, naming the fields), and the typed value.
import assert from "node:assert/strict";
import { HttpError } from "../_shared/http/errors.ts";
import { json } from "../_shared/http/respond.ts";
import { withHttp } from "../_shared/http/with-http.ts";
import { readJson, readRawBody, requireJson, z } from "../_shared/http/validation.ts";

const Body = z.object({
  plan: z.enum(["pro", "max"]),
  seats: z.number().int().positive(),
  items: z.array(z.object({ name: z.string().min(1) })).default([]),
});

const post = (
  body: BodyInit | null,
  headers: Record<string, string> = { "content-type": "application/json" },
) => new Request("http://x/fn", { method: "POST", body, headers });

async function assertHttpError(promise: Promise<unknown>, status: number, code: string, message?: RegExp) {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(e instanceof HttpError, `expected HttpError, got ${e}`);
    assert.equal(e.status, status);
    assert.equal(e.code, code);
    if (message) assert.match(e.message, message);
    return true;
  });
}

/** An endless stream of 1 KiB chunks that counts how many bytes were pulled from it. */
function endless(): { stream: ReadableStream<Uint8Array>; pulled: () => number } {
  let pulled = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      pulled += 1024;
      controller.enqueue(new Uint8Array(1024).fill(0x20));
    },
  }, { highWaterMark: 0 });
  return { stream, pulled: () => pulled };
}

Deno.test("readJson returns the parsed, typed value (charset parameter allowed, defaults applied)", async () => {
  const value = await readJson(
    post(JSON.stringify({ plan: "pro", seats: 3 }), { "content-type": "application/json; charset=utf-8" }),
    Body,
  );
  assert.deepEqual(value, { plan: "pro", seats: 3, items: [] });
  const seats: number = value.seats; // typed as the schema's output
  assert.equal(seats, 3);
});

Deno.test("a body whose Content-Length exceeds maxBytes is a 413 before any byte is read", async () => {
  const { stream, pulled } = endless();
  const req = post(stream, { "content-type": "application/json", "content-length": "100000" });
  await assertHttpError(readJson(req, Body, { maxBytes: 1024 }), 413, "payload_too_large", /1024 bytes/);
  assert.equal(pulled(), 0);
  await assertHttpError(
    readRawBody(post("x".repeat(10), { "content-length": "11" }), 10),
    413,
    "payload_too_large",
  );
});

Deno.test("a streamed body without Content-Length is a 413 once it passes maxBytes, and reading stops", async () => {
  const { stream, pulled } = endless();
  const req = post(stream);
  assert.equal(req.headers.get("content-length"), null);
  await assertHttpError(readJson(req, Body, { maxBytes: 4096 }), 413, "payload_too_large");
  assert.ok(pulled() <= 4096 + 1024, `read ${pulled()} bytes`);
  // Exactly maxBytes is still fine.
  const exact = await readRawBody(post(new Uint8Array(4096).fill(0x61)), 4096);
  assert.equal(exact.byteLength, 4096);
});

Deno.test("a body that is not application/json is a 415, checked before its size", async () => {
  for (const type of ["text/plain", "application/x-www-form-urlencoded", "application/jsonp"]) {
    await assertHttpError(
      readJson(post("{}", { "content-type": type, "content-length": "999999" }), Body, { maxBytes: 10 }),
      415,
      "unsupported_media_type",
    );
  }
  assert.throws(
    () => requireJson(post("{}", {})),
    (e: unknown) => e instanceof HttpError && e.status === 415,
  );
  requireJson(post("{}", { "content-type": "Application/JSON;charset=UTF-8" }));
});

Deno.test("a body that is not valid JSON is a 400 'Body is not valid JSON'", async () => {
  for (const body of ["{plan:", "", "\xff", new Uint8Array([0x7b, 0xff, 0x7d])]) {
    await assertHttpError(readJson(post(body), Body), 400, "invalid_request", /^Body is not valid JSON$/);
  }
});

Deno.test("a body that fails the schema is a 400 naming each failing field", async () => {
  const req = post(JSON.stringify({ plan: "free", seats: 0, items: [{ name: "a" }, { name: "" }] }));
  await assert.rejects(readJson(req, Body), (e: unknown) => {
    assert.ok(e instanceof HttpError);
    assert.equal(e.status, 400);
    assert.equal(e.code, "invalid_request");
    assert.match(e.message, /plan: Invalid option: expected one of "pro"\|"max"/);
    assert.match(e.message, /seats: Too small/);
    assert.match(e.message, /items\[1\]\.name: Too small/);
    return true;
  });
  await assertHttpError(readJson(post("[1,2]"), Body), 400, "invalid_request", /expected object/);
});

Deno.test("readRawBody returns bytes or text, and refuses text that is not UTF-8", async () => {
  const bytes = await readRawBody(post("héllo"), 100);
  assert.ok(bytes instanceof Uint8Array);
  assert.equal(bytes.byteLength, 6);
  assert.equal(await readRawBody(post("héllo"), 100, "text"), "héllo");
  assert.equal(await readRawBody(new Request("http://x/fn"), 100, "text"), "");
  await assertHttpError(readRawBody(post(new Uint8Array([0xc3, 0x28])), 100, "text"), 400, "invalid_request");
});

Deno.test("over HTTP, a huge Content-Length is answered 413 without the server waiting for the body", async () => {
  const handler = withHttp({ name: "validation-test", methods: ["POST"] }, async (req) => {
    return json(await readJson(req, Body, { maxBytes: 1024 }));
  });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, handler);
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
    try {
      // Headers only: a server that read the body first would wait for 10 MB that never come.
      await conn.write(new TextEncoder().encode(
        "POST /fn HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" +
          "Content-Length: 10000000\r\nConnection: close\r\n\r\n",
      ));
      const buf = new Uint8Array(4096);
      const n = await conn.read(buf);
      const head = new TextDecoder().decode(buf.subarray(0, n ?? 0));
      assert.match(head, /^HTTP\/1\.1 413/);
      assert.match(head, /"code":"payload_too_large"/);
    } finally {
      conn.close();
    }
    const ok = await fetch(`http://127.0.0.1:${server.addr.port}/fn`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ plan: "max", seats: 1 }),
    });
    assert.equal(ok.status, 200);
    assert.deepEqual(await ok.json(), { plan: "max", seats: 1, items: [] });
  } finally {
    await server.shutdown();
  }
});
