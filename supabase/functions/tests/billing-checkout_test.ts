// Checkout and the billing portal over HTTP through the test functions server, with the fake Stripe API
// (tests/_lib/fake-stripe.ts) on 127.0.0.1:12111 started in each test:
//   create-pro-subscription, buy-token-pack, billing-portal: auth (401), input (400/415), the params Stripe
//   receives, one customer per user (also under a race), one session per double click, 409 when already
//   subscribed, 404 for an unknown pack, 502 without Stripe's internals when Stripe is down.
// The first tests check the fake itself with the real Stripe SDK as its client.
import assert from "node:assert/strict";
import postgres from "npm:postgres@3.4.9";
import Stripe from "npm:stripe@23.1.0";
import { CHECKOUT_DEDUPE_WINDOW_MS } from "../_shared/billing/idempotency.ts";
import {
  FAKE_STRIPE_500_MESSAGE,
  type FakeStripe,
  type Params,
  parseStripeForm,
  type RecordedRequest,
  startFakeStripe,
} from "./_lib/fake-stripe.ts";
import { stack } from "./_lib/stack.ts";
import { hs256, userClaims } from "./_lib/tokens.ts";

type Sql = postgres.Sql;
const APP_URL = "http://localhost:3000"; // tests/.env.test

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// ----------------------------------------------------------------------------------------- helpers

type TestUser = { id: string; email: string; token: string };
type Scenario = { fake: FakeStripe; sql: Sql; newUser: () => Promise<TestUser> };

/** The fake Stripe API started, a DB client, and users created on demand; all undone after. */
async function scenario(fn: (s: Scenario) => Promise<void>): Promise<void> {
  await using fake = await startFakeStripe();
  const sql = postgres(stack.dbUrl, { max: 2, prepare: false, onnotice: () => {} });
  const ids: string[] = [];
  try {
    await fn({
      fake,
      sql,
      newUser: async () => {
        const id = crypto.randomUUID();
        const email = `billing-test-${id}@example.com`;
        ids.push(id);
        await sql`insert into auth.users (id, email, aud, role) values (${id}, ${email}, 'authenticated', 'authenticated')`;
        return { id, email, token: await hs256(userClaims(id, email)) };
      },
    });
  } finally {
    if (ids.length > 0) await sql`delete from auth.users where id in ${sql(ids)}`;
    await sql.end();
  }
}

// deno-lint-ignore no-explicit-any
type Reply = { status: number; body: any; text: string; headers: Headers };

async function call(
  fn: string,
  init: { token?: string; body?: unknown; headers?: Record<string, string>; method?: string } = {},
): Promise<Reply> {
  const headers: Record<string, string> = { "content-type": "application/json", ...init.headers };
  if (init.token) headers.authorization = `Bearer ${init.token}`;
  const res = await fetch(`${stack.functionsUrl}/${fn}`, {
    method: init.method ?? "POST",
    headers,
    body: init.body === undefined
      ? undefined
      : typeof init.body === "string"
      ? init.body
      : JSON.stringify(init.body),
  });
  const text = await res.text();
  let body: unknown = null;
  try {
    body = JSON.parse(text);
  } catch { /* not JSON */ }
  return { status: res.status, body, text, headers: res.headers };
}

const subscribe = (user: TestUser, body: unknown = { plan: "pro", billingPeriod: "monthly" }, headers = {}) =>
  call("create-pro-subscription", { token: user.token, body, headers });

async function storedCustomer(sql: Sql, userId: string): Promise<string | null> {
  const [row] = await sql<{ stripe_customer_id: string | null }[]>`
    select stripe_customer_id from public.users where id = ${userId}`;
  return row.stripe_customer_id;
}

const sessionsCreated = (fake: FakeStripe) => fake.requestsTo("POST", "/v1/checkout/sessions");
const customersCreated = (fake: FakeStripe) => fake.requestsTo("POST", "/v1/customers");

function only(requests: RecordedRequest[]): RecordedRequest {
  assert.equal(requests.length, 1, `expected one request, got ${requests.length}`);
  return requests[0];
}

/** Waits past the edge of a fixed window if fewer than `marginMs` of it are left (keeps tests deterministic). */
async function awayFromWindowEdge(windowMs: number, marginMs: number): Promise<void> {
  const left = windowMs - (Date.now() % windowMs);
  if (left < marginMs) await sleep(left + 50);
}

function assertErrorShape(reply: Reply, status: number, code: string): void {
  assert.equal(reply.status, status, reply.text);
  assert.equal(reply.body?.error?.code, code, reply.text);
  assert.equal(typeof reply.body.error.message, "string");
  assert.deepEqual(Object.keys(reply.body), ["error"]);
}

// ---------------------------------------------------------------- the fake, with the real SDK as client

function sdk(
  fake: FakeStripe,
  options: Partial<Stripe.StripeConfig> = {},
  key = "sk_test_fake_sdk_client",
): Stripe {
  return new Stripe(key, {
    httpClient: Stripe.createFetchHttpClient(),
    host: fake.hostname,
    port: fake.port,
    protocol: "http",
    maxNetworkRetries: 0,
    telemetry: false,
    ...options,
  });
}

/** A header of the response an SDK result came from (with the fetch client, lastResponse is the Response). */
function responseHeader(result: { lastResponse: { headers: unknown } }, name: string): string | null {
  const headers = result.lastResponse.headers;
  return headers instanceof Headers ? headers.get(name) : (headers as Record<string, string>)[name] ?? null;
}

Deno.test("fake Stripe: the form parser reads bracket notation into nested objects and arrays", () => {
  assert.deepEqual(
    parseStripeForm(
      "mode=subscription&line_items[0][price]=price_a&line_items[0][quantity]=1&line_items[1][price]=price_b" +
        "&metadata[user_id]=u1&expand[]=line_items&expand[]=customer&success_url=" +
        encodeURIComponent("http://x/s?session_id={CHECKOUT_SESSION_ID}"),
    ),
    {
      mode: "subscription",
      line_items: [{ price: "price_a", quantity: "1" }, { price: "price_b" }],
      metadata: { user_id: "u1" },
      expand: ["line_items", "customer"],
      success_url: "http://x/s?session_id={CHECKOUT_SESSION_ID}",
    } satisfies Params,
  );
});

Deno.test("fake Stripe: the SDK creates and retrieves customers, checkout and portal sessions", async () => {
  await using fake = await startFakeStripe();
  const client = sdk(fake);

  const customer = await client.customers.create({ email: "a@example.com", metadata: { user_id: "u1" } });
  assert.match(customer.id, /^cus_[A-Za-z0-9]+$/);
  assert.equal(customer.object, "customer");
  assert.equal(customer.email, "a@example.com");
  assert.deepEqual(customer.metadata, { user_id: "u1" });
  const retrieved = await client.customers.retrieve(customer.id);
  assert.equal(retrieved.id, customer.id);

  const session = await client.checkout.sessions.create({
    mode: "subscription",
    customer: customer.id,
    line_items: [{ price: "price_local_pro_monthly", quantity: 1 }],
    client_reference_id: "u1",
    metadata: { user_id: "u1", plan: "pro" },
    subscription_data: { metadata: { user_id: "u1" } },
    success_url: "http://localhost:3000/ok?session_id={CHECKOUT_SESSION_ID}",
    cancel_url: "http://localhost:3000/cancel",
  });
  assert.match(session.id, /^cs_test_[A-Za-z0-9]+$/);
  assert.equal(session.object, "checkout.session");
  assert.equal(session.url, `https://checkout.stripe.com/c/pay/${session.id}`);
  assert.equal(session.mode, "subscription");
  assert.equal(session.customer, customer.id);
  assert.equal(session.client_reference_id, "u1");
  assert.deepEqual(session.metadata, { user_id: "u1", plan: "pro" });
  assert.equal(session.success_url, "http://localhost:3000/ok?session_id={CHECKOUT_SESSION_ID}");
  assert.equal(session.status, "open");

  const payment = await client.checkout.sessions.create({
    mode: "payment",
    customer: customer.id,
    line_items: [{
      price_data: { currency: "usd", unit_amount: 1000, product_data: { name: "1M" } },
      quantity: 2,
    }],
    payment_intent_data: { metadata: { pack_id: "pack_1m" } },
    expand: ["line_items"],
  });
  assert.equal(payment.amount_total, 2000);
  assert.equal(payment.currency, "usd");
  assert.equal(payment.line_items?.data[0].quantity, 2);

  const portal = await client.billingPortal.sessions.create({
    customer: customer.id,
    return_url: "http://x/b",
  });
  assert.match(portal.id, /^bps_[A-Za-z0-9]+$/);
  assert.equal(portal.object, "billing_portal.session");
  assert.equal(portal.url, `https://billing.stripe.com/p/session/${portal.id}`);
  assert.equal(portal.customer, customer.id);
  assert.equal(portal.return_url, "http://x/b");

  // What went over the wire, as recorded.
  const [created, , sub] = fake.requests;
  assert.equal(created.headers["content-type"], "application/x-www-form-urlencoded");
  assert.equal(created.headers.authorization, "Bearer sk_test_fake_sdk_client");
  assert.deepEqual(created.params, { email: "a@example.com", metadata: { user_id: "u1" } });
  assert.match(created.idempotencyKey ?? "", /^stripe-node-retry-/); // the SDK keys every POST
  assert.deepEqual(sub.params.line_items, [{ price: "price_local_pro_monthly", quantity: "1" }]);
  assert.deepEqual(sub.params.subscription_data, { metadata: { user_id: "u1" } });
  assert.equal(fake.requests[1].method, "GET");
  assert.equal(fake.requests[1].path, `/v1/customers/${customer.id}`);
});

Deno.test("fake Stripe: Stripe's errors — 401 without a valid key, 404 resource_missing, unknown parameter", async () => {
  await using fake = await startFakeStripe();

  const raw = await fetch(`${fake.url}/v1/customers`, { method: "POST" });
  assert.equal(raw.status, 401);
  const body = await raw.json();
  assert.equal(body.error.type, "invalid_request_error");
  assert.match(body.error.message, /did not provide an API key/);

  await assert.rejects(
    sdk(fake, {}, "not_a_key").customers.create({}),
    (e: unknown) => e instanceof Stripe.errors.StripeAuthenticationError && e.statusCode === 401,
  );
  await assert.rejects(
    sdk(fake).customers.retrieve("cus_missing"),
    (e: unknown) =>
      e instanceof Stripe.errors.StripeInvalidRequestError && e.statusCode === 404 &&
      e.code === "resource_missing",
  );
  await assert.rejects(
    // deno-lint-ignore no-explicit-any
    sdk(fake).customers.create({ emial: "typo@example.com" } as any),
    (e: unknown) =>
      e instanceof Stripe.errors.StripeInvalidRequestError && e.code === "parameter_unknown" &&
      e.param === "emial",
  );
  await assert.rejects(
    sdk(fake).checkout.sessions.create({
      mode: "subscription",
      customer: "cus_nobody",
      line_items: [{ price: "price_x", quantity: 1 }],
    }),
    (e: unknown) => e instanceof Stripe.errors.StripeInvalidRequestError && e.param === "customer",
  );
});

Deno.test("fake Stripe: Idempotency-Key replays the same answer and refuses other parameters", async () => {
  await using fake = await startFakeStripe();
  const client = sdk(fake);

  const first = await client.customers.create({ email: "i@example.com" }, { idempotencyKey: "customer:k1" });
  const second = await client.customers.create({ email: "i@example.com" }, { idempotencyKey: "customer:k1" });
  assert.equal(second.id, first.id);
  assert.equal(responseHeader(second, "idempotent-replayed"), "true");
  assert.equal(responseHeader(first, "idempotent-replayed"), null);
  assert.equal(responseHeader(second, "original-request"), first.lastResponse.requestId);
  assert.equal(fake.customers.size, 1);
  assert.deepEqual(customersCreated(fake).map((r) => [r.idempotencyKey, r.replayed]), [
    ["customer:k1", false],
    ["customer:k1", true],
  ]);

  await assert.rejects(
    client.customers.create({ email: "other@example.com" }, { idempotencyKey: "customer:k1" }),
    (e: unknown) => e instanceof Stripe.errors.StripeIdempotencyError && e.statusCode === 400,
  );
  await assert.rejects(
    client.billingPortal.sessions.create({ customer: first.id }, { idempotencyKey: "customer:k1" }),
    (e: unknown) => e instanceof Stripe.errors.StripeIdempotencyError && /same endpoint/.test(e.message),
  );
});

Deno.test("fake Stripe: injected 500s are retried by the SDK with the same key; delays slow a request", async () => {
  await using fake = await startFakeStripe();

  fake.fail({ times: 1, status: 500 });
  const customer = await sdk(fake, { maxNetworkRetries: 1 }).customers.create({ email: "r@example.com" });
  const [failed, retried] = customersCreated(fake);
  assert.equal(failed.status, 500);
  assert.equal((failed.response as { error: { type: string } }).error.type, "api_error");
  assert.equal(retried.status, 200);
  assert.equal(retried.idempotencyKey, failed.idempotencyKey);
  assert.equal(retried.replayed, false, "a failed attempt is not stored");
  assert.equal((retried.response as { id: string }).id, customer.id);

  fake.fail({ times: Infinity, status: 503, path: "/v1/billing_portal/sessions" });
  await assert.rejects(
    sdk(fake).billingPortal.sessions.create({ customer: customer.id }),
    (e: unknown) => e instanceof Stripe.errors.StripeAPIError && e.statusCode === 503,
  );
  await sdk(fake).customers.retrieve(customer.id); // other paths are unaffected
  fake.clearFaults();

  fake.fail({ delayMs: 150 });
  const started = performance.now();
  await sdk(fake).customers.retrieve(customer.id);
  assert.ok(performance.now() - started >= 140);
});

// ------------------------------------------------------------------------------------- the functions

Deno.test("billing functions: no token → 401 (gateway); the anon key → 401 (not a user)", async () => {
  await scenario(async ({ fake }) => {
    for (const fn of ["create-pro-subscription", "buy-token-pack", "billing-portal"]) {
      const none = await call(fn, { body: { plan: "pro", billingPeriod: "monthly", packId: "pack_1m" } });
      assert.equal(none.status, 401, `${fn}: ${none.text}`);
      const anon = await call(fn, {
        token: stack.anonKey,
        body: fn === "buy-token-pack" ? { packId: "pack_1m" } : { plan: "pro", billingPeriod: "monthly" },
      });
      assertErrorShape(anon, 401, "unauthorized");
    }
    assert.equal(fake.requests.length, 0);
  });
});

Deno.test("billing functions: a bad body is a 400 naming the field; another content type is a 415", async () => {
  await scenario(async ({ fake, newUser }) => {
    const user = await newUser();
    const plan = await subscribe(user, { plan: "gold", billingPeriod: "monthly" });
    assertErrorShape(plan, 400, "invalid_request");
    assert.match(plan.body.error.message, /^plan:/);

    const period = await subscribe(user, { plan: "pro" });
    assertErrorShape(period, 400, "invalid_request");
    assert.match(period.body.error.message, /billingPeriod/);

    const pack = await call("buy-token-pack", { token: user.token, body: {} });
    assertErrorShape(pack, 400, "invalid_request");
    assert.match(pack.body.error.message, /packId/);

    const notJson = await subscribe(user, "plan=pro");
    assertErrorShape(notJson, 400, "invalid_request");

    const key = await subscribe(user, { plan: "pro", billingPeriod: "monthly" }, {
      "idempotency-key": "no spaces!",
    });
    assertErrorShape(key, 400, "invalid_request");
    assert.match(key.body.error.message, /Idempotency-Key/);

    for (const fn of ["create-pro-subscription", "buy-token-pack"]) {
      const wrongType = await call(fn, {
        token: user.token,
        body: "plan=pro&billingPeriod=monthly",
        headers: { "content-type": "application/x-www-form-urlencoded" },
      });
      assertErrorShape(wrongType, 415, "unsupported_media_type");
    }

    const get = await call("create-pro-subscription", { token: user.token, method: "GET" });
    assertErrorShape(get, 405, "method_not_allowed");
    assert.equal(fake.requests.length, 0, "nothing reaches Stripe");
  });
});

Deno.test("create-pro-subscription: a Checkout Session for the token's user with the plan's price from the DB", async () => {
  await scenario(async ({ fake, sql, newUser }) => {
    const user = await newUser();
    const [plan] = await sql<{ stripe_price_yearly: string }[]>`
      select stripe_price_yearly from public.subscription_plans where id = 'max'`;

    const reply = await subscribe(user, { plan: "max", billingPeriod: "yearly" });
    assert.equal(reply.status, 200, reply.text);
    assert.deepEqual(Object.keys(reply.body).sort(), ["sessionId", "url"]);
    assert.match(reply.body.sessionId, /^cs_test_/);
    assert.equal(reply.body.url, `https://checkout.stripe.com/c/pay/${reply.body.sessionId}`);
    assert.equal(reply.headers.get("x-ratelimit-limit"), "10");

    const created = only(customersCreated(fake));
    assert.deepEqual(created.params, { email: user.email, metadata: { user_id: user.id } });
    assert.equal(created.idempotencyKey, `customer:${user.id}`);
    assert.equal(created.headers.authorization, "Bearer sk_test_local_fake_key_for_tests");
    const customerId = (created.response as { id: string }).id;
    assert.equal(await storedCustomer(sql, user.id), customerId);

    const session = only(sessionsCreated(fake));
    assert.deepEqual(session.params, {
      mode: "subscription",
      customer: customerId,
      line_items: [{ price: plan.stripe_price_yearly, quantity: "1" }],
      client_reference_id: user.id,
      metadata: { user_id: user.id, plan: "max", billing_period: "yearly" },
      subscription_data: { metadata: { user_id: user.id, plan: "max" } },
      success_url: `${APP_URL}/billing/success?session_id={CHECKOUT_SESSION_ID}`,
      cancel_url: `${APP_URL}/billing/cancel`,
    });
    assert.match(
      session.idempotencyKey ?? "",
      new RegExp(`^subscription:${user.id}:max:yearly:\\d+:[0-9a-f]{16}$`),
    );
    assert.equal((session.response as { id: string }).id, reply.body.sessionId);
  });
});

Deno.test("create-pro-subscription: a userId in the body is ignored; everything belongs to the token's user", async () => {
  await scenario(async ({ fake, sql, newUser }) => {
    const [user, victim] = [await newUser(), await newUser()];
    const reply = await subscribe(user, { plan: "pro", billingPeriod: "monthly", userId: victim.id });
    assert.equal(reply.status, 200, reply.text);

    const created = only(customersCreated(fake));
    assert.deepEqual(created.params, { email: user.email, metadata: { user_id: user.id } });
    const session = only(sessionsCreated(fake));
    assert.equal((session.params.metadata as Params).user_id, user.id);
    assert.equal((session.params.subscription_data as { metadata: Params }).metadata.user_id, user.id);
    assert.equal(session.params.client_reference_id, user.id);
    assert.equal(session.params.customer, await storedCustomer(sql, user.id));
    assert.equal(await storedCustomer(sql, victim.id), null);
    assert.ok(!JSON.stringify(fake.requests.map((r) => r.params)).includes(victim.id));
  });
});

Deno.test("create-pro-subscription: reuses the stored customer (no POST /v1/customers)", async () => {
  await scenario(async ({ fake, sql, newUser }) => {
    const user = await newUser();
    const existing = fake.seedCustomer({ email: user.email, metadata: { user_id: user.id } });
    await sql`update public.users set stripe_customer_id = ${existing.id as string} where id = ${user.id}`;

    const reply = await subscribe(user);
    assert.equal(reply.status, 200, reply.text);
    assert.equal(customersCreated(fake).length, 0);
    assert.equal(only(sessionsCreated(fake)).params.customer, existing.id);
  });
});

Deno.test("create-pro-subscription: two concurrent first checkouts → one customer, stored once, one session", async () => {
  await scenario(async ({ fake, sql, newUser }) => {
    await awayFromWindowEdge(CHECKOUT_DEDUPE_WINDOW_MS, 5_000);
    const user = await newUser();
    fake.fail({ delayMs: 400, path: "/v1/customers" }); // keep the first creation in flight while the second arrives

    const [a, b] = await Promise.all([subscribe(user), subscribe(user)]);
    assert.equal(a.status, 200, a.text);
    assert.equal(b.status, 200, b.text);
    assert.equal(a.body.sessionId, b.body.sessionId);

    const created = customersCreated(fake);
    assert.ok(created.length >= 2, "both requests asked Stripe for a customer");
    assert.ok(created.every((r) => r.idempotencyKey === `customer:${user.id}`));
    const distinct = new Set(
      created.filter((r) => r.status === 200).map((r) => (r.response as { id: string }).id),
    );
    assert.equal(distinct.size, 1);
    assert.equal(fake.customers.size, 1);
    assert.equal(await storedCustomer(sql, user.id), [...distinct][0]);
    assert.equal(fake.checkoutSessions.size, 1);
  });
});

Deno.test("create-pro-subscription: a double click makes one Checkout Session (idempotent replay)", async () => {
  await scenario(async ({ fake, newUser }) => {
    await awayFromWindowEdge(CHECKOUT_DEDUPE_WINDOW_MS, 5_000);
    const user = await newUser();
    const first = await subscribe(user);
    const second = await subscribe(user);
    assert.equal(first.status, 200, first.text);
    assert.equal(second.status, 200, second.text);
    assert.deepEqual(second.body, first.body);

    const [one, two] = sessionsCreated(fake);
    assert.equal(one.idempotencyKey, two.idempotencyKey);
    assert.deepEqual([one.replayed, two.replayed], [false, true]);
    assert.equal(fake.checkoutSessions.size, 1);
    assert.equal(customersCreated(fake).length, 1, "the second click found the stored customer");

    // Another plan is another request, not a replay.
    const yearly = await subscribe(user, { plan: "pro", billingPeriod: "yearly" });
    assert.equal(yearly.status, 200, yearly.text);
    assert.notEqual(yearly.body.sessionId, first.body.sessionId);
  });
});

Deno.test("create-pro-subscription: the client's Idempotency-Key replays; reused for another body → 409", async () => {
  await scenario(async ({ fake, newUser }) => {
    const user = await newUser();
    const key = { "idempotency-key": crypto.randomUUID() };
    const first = await subscribe(user, { plan: "pro", billingPeriod: "monthly" }, key);
    const again = await subscribe(user, { plan: "pro", billingPeriod: "monthly" }, key);
    assert.equal(first.status, 200, first.text);
    assert.equal(again.body.sessionId, first.body.sessionId);
    assert.equal(
      sessionsCreated(fake)[0].idempotencyKey,
      `subscription:${user.id}:key:${key["idempotency-key"]}`,
    );

    const other = await subscribe(user, { plan: "max", billingPeriod: "monthly" }, key);
    assertErrorShape(other, 409, "conflict");
    assert.match(other.body.error.message, /Idempotency-Key/);
    assert.equal(fake.checkoutSessions.size, 1);
  });
});

Deno.test("create-pro-subscription: a user with a subscription that can still bill gets 409 (use the billing portal)", async () => {
  await scenario(async ({ fake, sql, newUser }) => {
    const user = await newUser();
    const sub = `sub_${crypto.randomUUID().replace(/-/g, "").slice(0, 24)}`;
    await sql`insert into public.user_subscriptions
                (user_id, plan_id, billing_period, status, stripe_subscription_id, stripe_customer_id, stripe_updated_at)
              values (${user.id}, 'pro', 'monthly', 'active', ${sub}, 'cus_TestCheckout409', now())`;
    const reply = await subscribe(user, { plan: "max", billingPeriod: "monthly" });
    assertErrorShape(reply, 409, "conflict");
    assert.match(reply.body.error.message, /billing portal/);
    assert.equal(fake.requests.length, 0);

    // Unpaid gives no paid plan, but the subscription is still there in Stripe and could bill again: 409 too.
    await sql`update public.user_subscriptions set status = 'unpaid' where stripe_subscription_id = ${sub}`;
    assertErrorShape(await subscribe(user), 409, "conflict");

    // A canceled subscription, or one never paid (incomplete), does not block a new one.
    for (const status of ["canceled", "incomplete"]) {
      await sql`update public.user_subscriptions set status = ${status} where stripe_subscription_id = ${sub}`;
      assert.equal((await subscribe(user)).status, 200, status);
    }
  });
});

Deno.test("create-pro-subscription: more than 10 a minute → 429 with Retry-After", async () => {
  await scenario(async ({ newUser }) => {
    await awayFromWindowEdge(60_000, 15_000);
    const user = await newUser();
    const statuses: number[] = [];
    let limited: Reply | undefined;
    for (let i = 0; i < 11; i++) {
      const reply = await subscribe(user);
      statuses.push(reply.status);
      if (reply.status === 429) limited = reply;
    }
    assert.deepEqual(statuses, [...Array(10).fill(200), 429]);
    assertErrorShape(limited!, 429, "rate_limited");
    assert.ok(Number(limited!.headers.get("retry-after")) >= 1);
  });
});

Deno.test("buy-token-pack: a payment-mode Checkout Session priced from public.token_packs", async () => {
  await scenario(async ({ fake, sql, newUser }) => {
    const user = await newUser();
    const [pack] = await sql<{ name: string; tokens: string; price_cents: number; currency: string }[]>`
      select name, tokens::text, price_cents, currency from public.token_packs where id = 'pack_5m'`;

    const reply = await call("buy-token-pack", {
      token: user.token,
      body: { packId: "pack_5m", userId: "x" },
    });
    assert.equal(reply.status, 200, reply.text);
    assert.equal(reply.body.url, `https://checkout.stripe.com/c/pay/${reply.body.sessionId}`);

    const customerId = await storedCustomer(sql, user.id);
    assert.match(customerId ?? "", /^cus_/);
    const metadata = { user_id: user.id, pack_id: "pack_5m", tokens: pack.tokens };
    const session = only(sessionsCreated(fake));
    assert.deepEqual(session.params, {
      mode: "payment",
      customer: customerId,
      line_items: [{
        price_data: {
          currency: pack.currency,
          unit_amount: String(pack.price_cents),
          product_data: { name: pack.name },
        },
        quantity: "1",
      }],
      client_reference_id: user.id,
      metadata,
      payment_intent_data: { metadata },
      success_url: `${APP_URL}/billing/success?session_id={CHECKOUT_SESSION_ID}`,
      cancel_url: `${APP_URL}/billing/cancel`,
    });
    assert.equal((session.response as { amount_total: number }).amount_total, pack.price_cents);
    assert.match(session.idempotencyKey ?? "", new RegExp(`^token_pack:${user.id}:pack_5m:`));
  });
});

Deno.test("buy-token-pack: an unknown or inactive pack → 404, and Stripe is not called", async () => {
  await scenario(async ({ fake, sql, newUser }) => {
    const user = await newUser();
    const unknown = await call("buy-token-pack", {
      token: user.token,
      body: { packId: "pack_does_not_exist" },
    });
    assertErrorShape(unknown, 404, "not_found");
    assert.equal(fake.requests.length, 0);
    assert.equal(await storedCustomer(sql, user.id), null);
  });
});

Deno.test("billing-portal: a portal session for the user's customer, returning to APP_URL/billing", async () => {
  await scenario(async ({ fake, sql, newUser }) => {
    const user = await newUser();
    const reply = await call("billing-portal", { token: user.token });
    assert.equal(reply.status, 200, reply.text);
    const portal = only(fake.requestsTo("POST", "/v1/billing_portal/sessions"));
    const id = (portal.response as { id: string }).id;
    assert.deepEqual(reply.body, { url: `https://billing.stripe.com/p/session/${id}` });
    assert.deepEqual(portal.params, {
      customer: await storedCustomer(sql, user.id),
      return_url: `${APP_URL}/billing`,
    });

    // Again: the same customer, no second customer.
    const again = await call("billing-portal", {
      token: user.token,
      body: "ignored",
      headers: { "content-type": "text/plain" },
    });
    assert.equal(again.status, 200, again.text);
    assert.equal(customersCreated(fake).length, 1);
  });
});

Deno.test("Stripe down (500s) → 502 upstream_error without Stripe's internals; nothing stored", async () => {
  await scenario(async ({ fake, sql, newUser }) => {
    const user = await newUser();
    fake.fail({ times: Infinity, status: 500 });

    const reply = await subscribe(user);
    assertErrorShape(reply, 502, "upstream_error");
    assert.doesNotMatch(reply.text, /stripe|api_error|req_|ERR_FAKE|something went wrong|sk_test/i);
    assert.ok(!reply.text.includes(FAKE_STRIPE_500_MESSAGE));
    assert.equal(await storedCustomer(sql, user.id), null);

    const attempts = customersCreated(fake);
    assert.equal(attempts.length, 3, "the SDK retried twice");
    assert.ok(attempts.every((r) => r.idempotencyKey === `customer:${user.id}` && r.status === 500));

    // The customer is created but the session fails: 502, and the retry reuses the stored customer.
    fake.clearFaults().fail({ times: Infinity, status: 500, path: "/v1/checkout/sessions" });
    const pack = await call("buy-token-pack", { token: user.token, body: { packId: "pack_1m" } });
    assertErrorShape(pack, 502, "upstream_error");
    const customerId = await storedCustomer(sql, user.id);
    assert.match(customerId ?? "", /^cus_/);

    fake.clearFaults();
    const retry = await call("buy-token-pack", { token: user.token, body: { packId: "pack_1m" } });
    assert.equal(retry.status, 200, retry.text);
    assert.equal(only(sessionsCreated(fake).filter((r) => r.status === 200)).params.customer, customerId);

    fake.fail({ times: Infinity, status: 500 });
    const portal = await call("billing-portal", { token: user.token });
    assertErrorShape(portal, 502, "upstream_error");
  });
});
