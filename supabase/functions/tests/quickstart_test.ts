// The README's quick start (scripts/examples/quickstart.ts) runs as written against the stack: sign-up, a table
// under RLS, a public table, an RPC, a function with the user's token, sign-out. Keeps the README true.
import assert from "node:assert/strict";
import { stack } from "./_lib/stack.ts";
import { testSql } from "./_lib/db.ts";

Deno.test("the README's supabase-js quick start runs against the local stack from sign-up to sign-out", async () => {
  const script = new URL("../../../scripts/examples/quickstart.ts", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--quiet", script],
    env: { API_URL: stack.apiUrl, ANON_KEY: stack.anonKey, NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const id = stdout.match(/^signed up: ([0-9a-f-]{36})$/m)?.[1];
  assert.ok(id, stdout);
  assert.match(stdout, /plan: "free"/);
  assert.match(stdout, /^plans: free, max, pro$/m);
  assert.match(stdout, /^usage rows this month: 0$/m);
  assert.match(stdout, /^health: ok$/m);
  assert.match(stdout, /^signed out$/m);
  const sql = testSql(1);
  try {
    const [session] = await sql`select count(*)::int as live from auth.sessions where user_id = ${id}`;
    assert.equal(session.live, 0, "sign-out ended the session");
    await sql`delete from auth.users where id = ${id}`;
  } finally {
    await sql.end();
  }
});
