// `npm run user` (scripts/stack/user.ts): a local user made through the Auth admin API, put on a plan, credited
// through the ledger's own function, with an access token that works; run again, it reuses the user; bad
// arguments change nothing.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { authScenario } from "./_lib/auth.ts";
import { stack } from "./_lib/stack.ts";

const ROOT = fileURLToPath(new URL("../../..", import.meta.url));

async function npmRunUser(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command("npm", {
    args: ["run", "-s", "user", "--", ...args],
    cwd: ROOT,
    env: { DB_URL: stack.dbUrl, KEYS_FILE: stack.keysFile, API_URL: "http://127.0.0.1:54321" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

Deno.test("npm run user creates a confirmed user on the plan, credits tokens through the ledger, prints a working token", async () => {
  await authScenario(async ({ sql, email, client }) => {
    const address = email();
    const run = await npmRunUser(
      "--email",
      address,
      "--password",
      "cli-password-1",
      "--plan",
      "pro",
      "--tokens",
      "1000",
      "--json",
    );
    assert.equal(run.code, 0, run.stderr);
    const printed = JSON.parse(run.stdout);
    assert.equal(printed.created, true);
    assert.equal(printed.email, address);
    assert.equal(printed.plan, "pro");
    assert.equal(printed.token_balance, "1000");

    const [account] = await sql`
      select u.plan, b.balance::text, a.email_confirmed_at is not null as confirmed
        from public.users u join public.token_balances b on b.user_id = u.id join auth.users a on a.id = u.id
       where u.id = ${printed.user_id}`;
    assert.deepEqual({ ...account }, { plan: "pro", balance: "1000", confirmed: true });
    const ledger =
      await sql`select delta::int, reason, metadata from public.token_transactions where user_id = ${printed.user_id}`;
    assert.deepEqual(ledger.map((r) => ({ ...r })), [
      { delta: 1000, reason: "adjustment", metadata: { source: "npm run user" } },
    ]);

    const { supabase } = client();
    const { data, error } = await supabase.auth.getUser(printed.access_token);
    assert.equal(error, null);
    assert.equal(data.user?.id, printed.user_id);
    assert.equal(
      (await supabase.auth.signInWithPassword({ email: address, password: "cli-password-1" })).error,
      null,
    );
  });
});

Deno.test("npm run user with an email that exists reuses that user and credits it again", async () => {
  await authScenario(async ({ sql, email }) => {
    const address = email();
    const first = JSON.parse((await npmRunUser("--email", address, "--tokens", "10", "--json")).stdout);
    const second = await npmRunUser("--email", address, "--tokens", "5", "--json");
    assert.equal(second.code, 0, second.stderr);
    const again = JSON.parse(second.stdout);
    assert.equal(again.created, false);
    assert.equal(again.user_id, first.user_id);
    assert.equal(again.token_balance, "15");
    const [{ n }] = await sql`select count(*)::int as n from auth.users where lower(email) = ${address}`;
    assert.equal(n, 1);
  });
});

Deno.test("npm run user with an unknown plan, bad --tokens or no --email exits 2 and creates nothing", async () => {
  await authScenario(async ({ sql, email }) => {
    const address = email();
    const plan = await npmRunUser("--email", address, "--plan", "platinum");
    assert.equal(plan.code, 2);
    assert.match(plan.stderr, /--plan must be one of: free, max, pro/);
    const tokens = await npmRunUser("--email", address, "--tokens=-5");
    assert.equal(tokens.code, 2);
    assert.match(tokens.stderr, /--tokens must be a positive whole number/);
    const none = await npmRunUser("--plan", "pro");
    assert.equal(none.code, 2);
    assert.match(none.stderr, /--email is required/);
    const [{ n }] = await sql`select count(*)::int as n from auth.users where lower(email) = ${address}`;
    assert.equal(n, 0);
  });
});
