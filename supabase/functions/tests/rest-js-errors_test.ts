// Errors in PostgREST's shape ({ code, details, hint, message }) with its SQLSTATE → HTTP table, the two ways
// SQL picks a status itself (PTxyz, RAISE SQLSTATE 'PGRST'), and the 4xx answers for what cannot be planned.
import assert from "node:assert/strict";
import { testSql } from "./_lib/db.ts";
import { anon, dropFixtures, installFixtures, rest } from "./_lib/rest-conformance.ts";

const sql = testSql(2);
await installFixtures(sql);

const raise = (kind: string) => anon().rpc("conformance_fail", { kind });

Deno.test("SQLSTATE PTxyz answers HTTP xyz with the error's message, detail and hint", async () => {
  const { error, status } = await raise("pt");
  assert.equal(status, 402);
  assert.deepEqual(error, {
    code: "PT402",
    details: "top up first",
    hint: "buy a token pack",
    message: "Payment required",
  });
});

Deno.test("RAISE SQLSTATE 'PGRST' sets the body from MESSAGE and the status, reason and headers from DETAIL", async () => {
  const res = await rest("/rpc/conformance_fail", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ kind: "pgrst" }),
  });
  assert.equal(res.status, 418);
  // status_text is not sent: Deno's HTTP server writes the standard reason phrase (docs/local-stack.md).
  assert.equal(res.headers.get("x-conformance"), "yes");
  assert.deepEqual(await res.json(), {
    code: "CX418",
    details: "short and stout",
    hint: "pour",
    message: "The teapot refuses",
  });
});

Deno.test("RAISE SQLSTATE 'PGRST' whose MESSAGE is not the JSON object is 500 PGRST121", async () => {
  const { error, status } = await raise("pgrst_bad");
  assert.equal(status, 500);
  assert.deepEqual(error, {
    code: "PGRST121",
    details: "Invalid JSON value for MESSAGE: 'not json'",
    hint:
      "MESSAGE must be a JSON object with obligatory keys: 'code', 'message' and optional keys: 'details', 'hint'.",
    message: `Could not parse JSON in the "RAISE SQLSTATE 'PGRST'" error`,
  });
});

Deno.test("our own PB402 has no class of its own in PostgREST's table: 400 with code PB402", async () => {
  const { error, status } = await raise("pb");
  assert.equal(status, 400);
  assert.deepEqual(error, { code: "PB402", details: null, hint: null, message: "not enough tokens" });
});

Deno.test("a plain RAISE EXCEPTION (P0001) is 400; invalid parameter value (22023) is 400", async () => {
  const p0001 = await raise("p0001");
  assert.deepEqual([p0001.status, p0001.error?.code, p0001.error?.message], [400, "P0001", "plain raise"]);
  const other = await raise("nothing");
  assert.deepEqual([other.status, other.error?.code], [400, "22023"]);
});

Deno.test("an unknown table is 404 PGRST205 with the closest table as hint", async () => {
  const { error, status } = await anon().from("conformance_workz").select("*");
  assert.equal(status, 404);
  assert.deepEqual(error, {
    code: "PGRST205",
    details: null,
    hint: "Perhaps you meant the table 'public.conformance_works'",
    message: "Could not find the table 'public.conformance_workz' in the schema cache",
  });
});

Deno.test("an unknown column in select, a filter or order is 400 42703 in PostgreSQL's words", async () => {
  const sel = await anon().from("conformance_works").select("id, nope");
  assert.equal(sel.status, 400);
  assert.equal(sel.error?.code, "42703");
  assert.equal(sel.error?.message, "column conformance_works.nope does not exist");
  const flt = await anon().from("conformance_works").select("id").eq("nope", 1);
  assert.deepEqual([flt.status, flt.error?.code], [400, "42703"]);
  const ord = await anon().from("conformance_works").select("id").order("nope");
  assert.deepEqual([ord.status, ord.error?.code], [400, "42703"]);
});

Deno.test("an unknown operator or an unparsable parameter is 400 PGRST100", async () => {
  const op = await rest("/conformance_works?id=foo.1");
  assert.equal(op.status, 400);
  const opBody = await op.json();
  assert.equal(opBody.code, "PGRST100");
  assert.equal(opBody.message, '"failed to parse filter (foo.1)" (line 1, column 1)');
  assert.equal(typeof opBody.details, "string");
  const select = await rest("/conformance_works?select=id,author(name");
  assert.equal(select.status, 400);
  assert.equal((await select.json()).code, "PGRST100");
  const order = await rest("/conformance_works?order=id.sideways");
  assert.equal(order.status, 400);
  assert.equal((await order.json()).code, "PGRST100");
  const logic = await rest("/conformance_works?or=(id.eq.1");
  assert.equal(logic.status, 400);
  assert.equal((await logic.json()).code, "PGRST100");
});

Deno.test("an unknown cast type is 400 42704", async () => {
  const { error, status } = await anon().from("conformance_works").select("id::nosuchtype");
  assert.equal(status, 400);
  assert.deepEqual([error?.code, error?.message], ["42704", 'type "nosuchtype" does not exist']);
});

Deno.test("aggregate functions are disabled as on a hosted project: 400 PGRST123", async () => {
  const { error, status } = await anon().from("conformance_works").select("count()");
  assert.equal(status, 400);
  assert.deepEqual(error, {
    code: "PGRST123",
    details: null,
    hint: null,
    message: "Use of aggregate functions is not allowed",
  });
});

Deno.test("a path of more than one segment is 404 PGRST125; PUT on a function is 405 PGRST101", async () => {
  const path = await rest("/conformance_works/1");
  assert.equal(path.status, 404);
  assert.equal((await path.json()).code, "PGRST125");
  const put = await rest("/rpc/conformance_sum", { method: "PUT", body: "{}" });
  assert.equal(put.status, 405);
  assert.deepEqual(await put.json(), {
    code: "PGRST101",
    details: null,
    hint: null,
    message: "Cannot use the PUT method on RPC",
  });
});

Deno.test("every error carries PostgREST's Proxy-Status header and a JSON content type", async () => {
  const res = await rest("/conformance_workz");
  await res.body?.cancel();
  assert.equal(res.headers.get("proxy-status"), "PostgREST; error=PGRST205");
  assert.equal(res.headers.get("content-type"), "application/json; charset=utf-8");
});

Deno.test("an operator the column's type lacks is PostgreSQL's 42883, which PostgREST answers 404", async () => {
  const { error, status } = await anon().from("conformance_works").select("id").like("id", "1%");
  assert.equal(status, 404);
  assert.equal(error?.code, "42883");
  assert.equal(error?.message, "operator does not exist: bigint ~~ unknown");
});

Deno.test("hostile names in select, order and filter keys are quoted identifiers: unknown columns, never SQL", async () => {
  // A quoted name (backslash escapes, as in PostgREST's grammar) may hold any character.
  const hostile = encodeURIComponent('"id\\" from pg_authid --"');
  for (
    const path of [
      `/conformance_works?select=${hostile}`,
      `/conformance_works?select=id&order=${hostile}`,
      `/conformance_works?select=id&${hostile}=eq.1`,
    ]
  ) {
    const res = await rest(path);
    const body = await res.json();
    assert.equal(res.status, 400, path);
    assert.equal(body.code, "42703", path);
    assert.equal(body.message, 'column conformance_works.id" from pg_authid -- does not exist', path);
  }
  const cast = await rest(`/conformance_works?select=${encodeURIComponent("id::text) from pg_authid --")}`);
  assert.equal(cast.status, 400);
  assert.equal((await cast.json()).code, "PGRST100");
  const alias = await anon().from("conformance_works").select(`id, "x') from pg_authid --":title`).eq(
    "id",
    3,
  );
  assert.deepEqual(alias.data, [{ id: 3, "x') from pg_authid --": "Solaris" }]);
});

Deno.test("rest errors teardown", async () => {
  await dropFixtures(sql);
  await sql.end();
});
