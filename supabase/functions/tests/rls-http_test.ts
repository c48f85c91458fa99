// The RLS guarantees of the identity, billing and usage tables, re-proved the way front ends meet them: users
// signed in through Auth (`signInWithPassword`), reading and writing through the Data API with supabase-js.
// The same guarantees are proved in SQL by supabase/tests/database/{identity,billing,gateway}; here the whole
// client path is in the loop (gateway, token verification, role switch, claims, PostgREST's error mapping).
import assert from "node:assert/strict";
import { anonClient, type Client, serviceClient } from "./_lib/supabase.ts";
import { type TestClient, testClient } from "./_lib/auth.ts";
import { testSql } from "./_lib/db.ts";
import type { SupabaseClient } from "npm:@supabase/supabase-js@2.119.0";

/** The same client without the generated types, for loops over several tables. */
const untyped = (client: Client) => client as unknown as SupabaseClient;

const sql = testSql(2);
const admin = serviceClient();
const PASSWORD = "correct horse battery staple 42";

type SignedIn = { id: string; email: string; client: Client; connection: TestClient };

/** A user made by the admin API and signed in through supabase-js, from a browser's own (loopback) address. */
async function signedInUser(): Promise<SignedIn> {
  const email = `rls-http-${crypto.randomUUID()}@example.com`;
  const created = await admin.auth.admin.createUser({ email, password: PASSWORD, email_confirm: true });
  assert.equal(created.error, null);
  const connection = testClient();
  const client = connection.supabase;
  const { data, error } = await client.auth.signInWithPassword({ email, password: PASSWORD });
  assert.equal(error, null);
  assert.ok(data.session?.access_token);
  return { id: created.data.user!.id, email, client, connection };
}

/** Two users with something in every table: a balance and its ledger row, usage, a notification, an alert. */
async function twoUsersWithData(): Promise<[SignedIn, SignedIn]> {
  const a = await signedInUser();
  const b = await signedInUser();
  for (const user of [a, b]) {
    await sql`select private.update_user_token_balance(${user.id}::uuid, 5000, 'adjustment',
                ${"rls-http:" + crypto.randomUUID()})`;
    await sql`insert into public.token_usage (request_id, user_id, provider, model, input_tokens, output_tokens,
                cost_micro_usd, status)
              values (${
      "rls-http-" + crypto.randomUUID()
    }, ${user.id}, 'openai', 'gpt-4o-mini', 100, 20, 42, 'ok')`;
    await sql`insert into public.notifications (user_id, kind, title) values (${user.id}, 'test', 'hello')`;
    await sql`insert into public.usage_alerts (user_id, threshold_percent, period_start, used_tokens,
                allowance_tokens)
              values (${user.id}, 80, date_trunc('month', now()), 800, 1000)`;
  }
  return [a, b];
}

async function cleanUp(...users: SignedIn[]) {
  for (const user of users) {
    await user.client.auth.signOut();
    user.connection[Symbol.dispose]();
    await admin.auth.admin.deleteUser(user.id);
  }
}

const USER_TABLES = [
  "users",
  "user_profiles",
  "user_settings",
  "token_balances",
  "token_transactions",
  "token_usage",
  "usage_daily",
  "user_subscriptions",
  "notifications",
  "usage_alerts",
] as const;
const ownerColumn = (table: (typeof USER_TABLES)[number]) => table === "users" ? "id" : "user_id";

Deno.test("anon cannot read any user table (401, permission denied)", async () => {
  const anon = anonClient();
  for (const table of USER_TABLES) {
    const { data, error, status } = await untyped(anon).from(table).select("*");
    assert.equal(data, null, table);
    assert.equal(status, 401, table);
    assert.equal(error?.code, "42501", table);
  }
});

Deno.test("a user reads only their own rows of every user table, and none of another user's", async () => {
  const [a, b] = await twoUsersWithData();
  try {
    for (const table of USER_TABLES) {
      const column = ownerColumn(table);
      const own = await untyped(a.client).from(table).select("*");
      assert.equal(own.error, null, table);
      assert.ok(own.data!.every((row) => (row as Record<string, unknown>)[column] === a.id), table);
      if (table !== "user_subscriptions") assert.ok(own.data!.length > 0, `${table}: a sees its own rows`);
      const theirs = await untyped(b.client).from(table).select("*").eq(column, a.id);
      assert.equal(theirs.error, null, table);
      assert.deepEqual(theirs.data, [], `${table}: b sees none of a's rows`);
    }
  } finally {
    await cleanUp(a, b);
  }
});

Deno.test("a user cannot update another user's profile, settings, notifications or alerts", async () => {
  const [a, b] = await twoUsersWithData();
  try {
    const attempts = [
      b.client.from("user_profiles").update({ display_name: "taken over" }).eq("user_id", a.id).select(),
      b.client.from("notifications").update({ read_at: new Date().toISOString() }).eq("user_id", a.id)
        .select(),
      b.client.from("usage_alerts").update({ read_at: new Date().toISOString() }).eq("user_id", a.id)
        .select(),
    ];
    for (const { data, error } of await Promise.all(attempts)) {
      assert.equal(error, null);
      assert.deepEqual(data, [], "RLS leaves no row of a's to update");
    }
    const [profile] = await sql`select display_name from public.user_profiles where user_id = ${a.id}`;
    assert.notEqual(profile.display_name, "taken over");
    const [unread] = await sql`select
        (select count(*) from public.notifications where user_id = ${a.id} and read_at is null)::int as notes,
        (select count(*) from public.usage_alerts where user_id = ${a.id} and read_at is null)::int as alerts`;
    assert.deepEqual({ ...unread }, { notes: 1, alerts: 1 });
  } finally {
    await cleanUp(a, b);
  }
});

Deno.test("a user edits their own profile and marks their own notification read", async () => {
  const [a, b] = await twoUsersWithData();
  try {
    const profile = await a.client.from("user_profiles").update({ display_name: "Ada" }).eq("user_id", a.id)
      .select("display_name").single();
    assert.equal(profile.error, null);
    assert.deepEqual(profile.data, { display_name: "Ada" });
    const read = await a.client.from("notifications").update({ read_at: new Date().toISOString() })
      .eq("user_id", a.id).select("user_id");
    assert.equal(read.error, null);
    assert.deepEqual(read.data, [{ user_id: a.id }]);
  } finally {
    await cleanUp(a, b);
  }
});

Deno.test("nobody deletes through the Data API: rows of user tables cannot be deleted (403)", async () => {
  const [a, b] = await twoUsersWithData();
  try {
    for (const table of USER_TABLES) {
      for (const user of [a, b]) {
        const { error, status } = await untyped(user.client).from(table).delete().eq(
          ownerColumn(table),
          a.id,
        );
        assert.equal(status, 403, `${table} as ${user === a ? "owner" : "another user"}`);
        assert.equal(error?.code, "42501", table);
      }
    }
    const [left] = await sql`select count(*)::int as n from public.notifications where user_id = ${a.id}`;
    assert.equal(left.n, 1);
  } finally {
    await cleanUp(a, b);
  }
});

Deno.test("a user cannot raise their own plan, set their Stripe ids or change their balance", async () => {
  const [a, b] = await twoUsersWithData();
  try {
    const attempts = [
      a.client.from("users").update({ plan: "pro" }).eq("id", a.id),
      a.client.from("users").update({ stripe_customer_id: "cus_forged" }).eq("id", a.id),
      a.client.from("token_balances").update({ balance: 10_000_000 }).eq("user_id", a.id),
      a.client.from("token_transactions").insert({
        user_id: a.id,
        delta: 10_000_000,
        balance_after: 10_005_000,
        reason: "adjustment",
        reference: `forged-${crypto.randomUUID()}`,
      }),
      a.client.from("user_subscriptions").insert({
        user_id: a.id,
        plan_id: "pro",
        status: "active",
        stripe_subscription_id: "sub_forged",
        stripe_customer_id: "cus_forged",
        stripe_updated_at: new Date().toISOString(),
      }),
      a.client.from("token_usage").update({ cost_micro_usd: 0 }).eq("user_id", a.id),
    ];
    for (const { error, status } of await Promise.all(attempts)) {
      assert.equal(status, 403);
      assert.equal(error?.code, "42501");
    }
    const [state] = await sql`select u.plan, u.stripe_customer_id, b.balance::int,
        (select count(*)::int from public.token_transactions t where t.user_id = u.id) as ledger_rows,
        (select count(*)::int from public.user_subscriptions s where s.user_id = u.id) as subscriptions,
        (select sum(cost_micro_usd)::int from public.token_usage t where t.user_id = u.id) as cost
      from public.users u join public.token_balances b on b.user_id = u.id where u.id = ${a.id}`;
    assert.deepEqual({ ...state }, {
      plan: "free",
      stripe_customer_id: null,
      balance: state.balance,
      ledger_rows: state.ledger_rows,
      subscriptions: 0,
      cost: 42,
    });
    const [ledger] = await sql`select coalesce(sum(delta), 0)::int as total from public.token_transactions
                                where user_id = ${a.id}`;
    assert.equal(state.balance, ledger.total, "the balance is still what the ledger says");
  } finally {
    await cleanUp(a, b);
  }
});

Deno.test("get_usage_summary answers a user's own usage only; anon may not call it", async () => {
  const [a, b] = await twoUsersWithData();
  try {
    const today = new Date().toISOString().slice(0, 10);
    const own = await a.client.rpc("get_usage_summary", { p_from: today, p_to: today });
    assert.equal(own.error, null);
    assert.equal(own.data!.length, 1);
    assert.equal(own.data![0].cost_micro_usd, 42);
    const anon = await anonClient().rpc("get_usage_summary", { p_from: today, p_to: today });
    assert.equal(anon.status, 401);
    assert.equal(anon.error?.code, "42501");
  } finally {
    await cleanUp(a, b);
  }
});

Deno.test("the catalog is public and read-only: anon reads plans, packs and prices, writes none", async () => {
  const anon = anonClient();
  for (
    const table of ["subscription_plans", "token_packs", "model_pricing", "platform_token_rates"] as const
  ) {
    const { data, error } = await anon.from(table).select("*").limit(1);
    assert.equal(error, null, table);
    assert.equal(data!.length, 1, table);
  }
  const write = await anon.from("model_pricing").update({ input_micro_usd_per_mtok: 0 }).gt("id", 0);
  assert.equal(write.status, 401);
  assert.equal(write.error?.code, "42501");
});

Deno.test("the service role reads every user's rows (it bypasses RLS), as the functions do", async () => {
  const [a, b] = await twoUsersWithData();
  try {
    const { data, error } = await admin.from("token_balances").select("user_id").in("user_id", [a.id, b.id]);
    assert.equal(error, null);
    assert.deepEqual(new Set(data!.map((row) => row.user_id)), new Set([a.id, b.id]));
  } finally {
    await cleanUp(a, b);
  }
});

Deno.test({
  name: "rls-http: close the database pool",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => await sql.end(),
});
