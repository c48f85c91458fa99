// npm run usage:replay applies the usage records the gateway could keep only in a log line, each exactly once:
// from a file or from stdin, with noise and prefixes around them, the same record logged twice, and run twice.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const DB_URL = Deno.env.get("DB_URL") ?? "postgresql://postgres:postgres@127.0.0.1:54322/postgres";
const KEPT = "usage record not stored: kept in this log line for replay";

async function sql(query: string): Promise<string> {
  const out = await new Deno.Command("psql", {
    args: [DB_URL, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", query],
  }).output();
  if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
  return new TextDecoder().decode(out.stdout).trim();
}

async function replay(args: string[], stdin?: string) {
  const child = new Deno.Command("npm", {
    args: ["run", "-s", "usage:replay", "--", ...args],
    cwd: ROOT,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    env: { DB_URL },
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const out = await child.output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

Deno.test("usage:replay applies every record kept in a log line once, from a file or stdin, however often replayed", async () => {
  const userId = crypto.randomUUID();
  await sql(
    `insert into auth.users (id, aud, role, email) values ('${userId}', 'authenticated', 'authenticated',
             'replay-${userId.slice(0, 8)}@example.com')`,
  );
  await sql(
    `select private.update_user_token_balance('${userId}', 1000000, 'adjustment', 'test:replay:${userId}')`,
  );
  try {
    const record = (n: number) => ({
      request_id: `replay-${userId}-${n}`,
      user_id: userId,
      provider: "openai",
      model: "gpt-4o-mini",
      input_tokens: 1000 * n,
      cached_input_tokens: 0,
      cache_write_tokens: 0,
      output_tokens: 100 * n,
      reasoning_tokens: 0,
      search_context_size: null,
      status: "ok",
      http_status: 200,
      latency_ms: 12,
      upstream_request_id: null,
      tokens_estimated: false,
      lease_id: null,
      admitted_at: new Date().toISOString(),
    });
    const line = (r: unknown) =>
      JSON.stringify({
        time: new Date().toISOString(),
        level: "error",
        msg: KEPT,
        fn: "openai-proxy",
        usage_record: r,
      });
    const logs = [
      '{"level":"info","msg":"request","status":200}',
      `2026-12-01T15:00:00.000Z stderr ${line(record(1))}`,
      "not json at all",
      line(record(2)),
      line(record(1)), // the same record logged twice
      '{"level":"error","msg":"something else","usage_record":{"request_id":"not-kept"}}',
    ].join("\n");
    const file = await Deno.makeTempFile({ suffix: ".log" });
    await Deno.writeTextFile(file, logs);

    const first = await replay([file]);
    assert.equal(first.code, 0, first.stderr);
    assert.match(
      first.stdout,
      /3 kept record\(s\) found \(2 distinct\): 2 applied, 0 already settled, 0 failed/,
    );
    const rows = await sql(`select count(*) from public.token_usage where user_id = '${userId}'`);
    assert.equal(rows, "2");
    const debits = await sql(`select count(*) from public.token_transactions where user_id = '${userId}'
                               and reason = 'usage'`);
    assert.equal(debits, "2");

    // Again, from stdin: nothing new.
    const balance = await sql(`select balance from public.token_balances where user_id = '${userId}'`);
    const second = await replay([], logs);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /2 distinct\): 0 applied, 2 already settled, 0 failed/);
    assert.equal(await sql(`select balance from public.token_balances where user_id = '${userId}'`), balance);

    // A record that cannot apply is reported and fails the run (and changes nothing).
    const bad = await replay([], line({ ...record(3), user_id: crypto.randomUUID() }));
    assert.equal(bad.code, 1);
    assert.match(bad.stdout, /0 applied, 0 already settled, 1 failed/);
  } finally {
    await sql(`delete from auth.users where id = '${userId}'`);
  }
});
