// The Stripe webhook over HTTP through the local gateway, with events signed by the stripe SDK's own
// test-header helper: each event type's effect, exactly-once under concurrency and replay, out-of-order
// delivery, every refusal (and that it writes nothing but its audit row), dead letters and replay.
import assert from "node:assert/strict";
import { STRIPE_WEBHOOK_IPS, stripeWebhookHandler } from "../stripe-webhook/handler.ts";
import { deleteTestUsers, testSql, type TestUser } from "./_lib/db.ts";
import { stack } from "./_lib/stack.ts";
import {
  charge,
  checkoutPayment,
  checkoutSubscription,
  deliver,
  event,
  ids,
  invoice,
  refund,
  signature,
  subscription,
  webhookUrl,
} from "./_lib/stripe-events.ts";
import { PRICES, webhookSuite } from "./_lib/stripe-webhook.ts";

const sql = testSql();
const users: TestUser[] = [];
const { test: webhookTest, newCustomer, balance, eventRow, resetRateLimit } = webhookSuite(sql, users);
const auditRows = async (requestId: string) =>
  await sql`select outcome, http_status, reason from private.webhook_audit_log where request_id = ${requestId}`;

webhookTest("checkout.session.completed for a subscription puts the user on the plan", async () => {
  const u = await newCustomer();
  const sub = ids.subscription();
  const res = await deliver(
    event(
      "checkout.session.completed",
      checkoutSubscription({ ...u, userId: u.id, plan: "pro", period: "monthly", sub }),
    ),
  );
  assert.deepEqual(res, { status: 200, body: { received: true, status: "processed" } });
  const [user] =
    await sql`select plan, plan_status, stripe_subscription_id from public.users where id = ${u.id}`;
  assert.deepEqual({ ...user }, { plan: "pro", plan_status: "active", stripe_subscription_id: sub });
  const [row] = await sql`select plan_id, billing_period, is_current from public.user_subscriptions
                           where stripe_subscription_id = ${sub}`;
  assert.deepEqual({ ...row }, { plan_id: "pro", billing_period: "monthly", is_current: true });
});

webhookTest(
  "a token pack is credited once per payment intent, whichever event carries it first",
  async () => {
    const u = await newCustomer();
    const pi = ids.paymentIntent();
    const session = checkoutPayment({ ...u, userId: u.id, packId: "pack_1m", tokens: 1_000_000, pi });
    assert.equal((await deliver(event("checkout.session.completed", session))).status, 200);
    assert.equal(await balance(u.id), 1_000_000);
    const intent = { id: pi, object: "payment_intent", customer: u.customer, metadata: session.metadata };
    assert.deepEqual(await deliver(event("payment_intent.succeeded", intent)), {
      status: 200,
      body: { received: true, status: "processed" },
    });
    assert.equal(await balance(u.id), 1_000_000);
    const ledger = await sql`select reference, reason from public.token_transactions where user_id = ${u.id}`;
    assert.deepEqual(ledger.map((r) => ({ ...r })), [{
      reference: `pi:${pi}`,
      reason: "token_pack_purchase",
    }]);
  },
);

webhookTest(
  "invoice.payment_succeeded and invoice.paid of one invoice credit its period's allowance once",
  async () => {
    const u = await newCustomer();
    const sub = ids.subscription();
    await deliver(
      event(
        "checkout.session.completed",
        checkoutSubscription({ ...u, userId: u.id, plan: "pro", period: "monthly", sub }),
      ),
    );
    const start = Math.floor(Date.now() / 1000) + 5;
    const inv = invoice({ customer: u.customer, sub, price: PRICES.proMonthly, start });
    assert.equal((await deliver(event("invoice.payment_succeeded", inv, start))).status, 200);
    // The same invoice again under a new event id (Stripe also sends invoice.paid): no second credit.
    assert.deepEqual(await deliver(event("invoice.paid", inv, start)), {
      status: 200,
      body: { received: true, status: "processed" },
    });
    const [plan] = await sql`select monthly_token_allowance from public.subscription_plans where id = 'pro'`;
    assert.equal(await balance(u.id), Number(plan.monthly_token_allowance));
    const ledger = await sql`select reference, reason from public.token_transactions where user_id = ${u.id}`;
    assert.deepEqual(ledger.map((r) => ({ ...r })), [{
      reference: `invoice:${inv.id}`,
      reason: "subscription_allowance",
    }]);
  },
);

webhookTest(
  "invoice.payment_failed notifies the user once; the subscription's own update makes it past_due",
  async () => {
    const u = await newCustomer();
    const sub = ids.subscription();
    const t0 = Math.floor(Date.now() / 1000);
    await deliver(
      event(
        "customer.subscription.updated",
        subscription({ id: sub, customer: u.customer, price: PRICES.proMonthly }),
        t0,
      ),
    );
    // invoice.payment_failed finds the user from the subscription's metadata, like the other invoice events.
    const other = ids.customer();
    const inv = invoice({ customer: other, sub, price: PRICES.proMonthly, userId: u.id, status: "open" });
    await sql`update public.users set stripe_customer_id = null where id = ${u.id}`;
    assert.equal((await deliver(event("invoice.payment_failed", inv, t0 + 10))).status, 200);
    assert.equal((await deliver(event("invoice.payment_failed", inv, t0 + 11))).status, 200);
    const notes = await sql`select kind from public.notifications where user_id = ${u.id}`;
    assert.deepEqual(notes.map((n) => n.kind), ["payment_failed"]);
    const [before] = await sql`select plan, plan_status from public.users where id = ${u.id}`;
    assert.deepEqual({ ...before }, { plan: "pro", plan_status: "active" });
    await sql`update public.users set stripe_customer_id = ${u.customer} where id = ${u.id}`;
    const pastDue = subscription({
      id: sub,
      customer: u.customer,
      price: PRICES.proMonthly,
      status: "past_due",
    });
    assert.equal((await deliver(event("customer.subscription.updated", pastDue, t0 + 10))).status, 200);
    const [user] = await sql`select plan, plan_status from public.users where id = ${u.id}`;
    assert.deepEqual(
      { ...user },
      { plan: "pro", plan_status: "past_due" },
      "past_due keeps the plan (grace)",
    );
  },
);

webhookTest(
  "customer.subscription.updated changes the plan by price and records cancel at period end",
  async () => {
    const u = await newCustomer();
    const sub = ids.subscription();
    const t0 = Math.floor(Date.now() / 1000);
    await deliver(
      event(
        "checkout.session.completed",
        checkoutSubscription({ ...u, userId: u.id, plan: "pro", period: "monthly", sub }),
        t0,
      ),
    );
    const updated = subscription({
      id: sub,
      customer: u.customer,
      price: PRICES.maxMonthly,
      cancelAtPeriodEnd: true,
    });
    assert.equal((await deliver(event("customer.subscription.updated", updated, t0 + 10))).status, 200);
    const [user] = await sql`select plan from public.users where id = ${u.id}`;
    assert.equal(user.plan, "max");
    const [row] =
      await sql`select plan_id, cancel_at_period_end from public.user_subscriptions where stripe_subscription_id = ${sub}`;
    assert.deepEqual({ ...row }, { plan_id: "max", cancel_at_period_end: true });
  },
);

webhookTest("an older event delivered after a newer one changes nothing", async () => {
  const u = await newCustomer();
  const sub = ids.subscription();
  const t0 = Math.floor(Date.now() / 1000);
  const newer = subscription({ id: sub, customer: u.customer, price: PRICES.maxMonthly });
  const older = subscription({ id: sub, customer: u.customer, price: PRICES.proMonthly });
  await deliver(event("customer.subscription.updated", newer, t0 + 100));
  assert.equal((await deliver(event("customer.subscription.updated", older, t0 + 50))).status, 200);
  const [row] =
    await sql`select plan_id from public.user_subscriptions where stripe_subscription_id = ${sub}`;
  assert.equal(row.plan_id, "max");
  const [user] = await sql`select plan from public.users where id = ${u.id}`;
  assert.equal(user.plan, "max");
});

webhookTest(
  "events of one second delivered out of order never move a subscription back in its life",
  async () => {
    const u = await newCustomer();
    const sub = ids.subscription();
    const t0 = Math.floor(Date.now() / 1000);
    const active = subscription({
      id: sub,
      customer: u.customer,
      price: PRICES.proMonthly,
      status: "active",
    });
    const incomplete = subscription({
      id: sub,
      customer: u.customer,
      price: PRICES.proMonthly,
      status: "incomplete",
    });
    await deliver(event("customer.subscription.updated", active, t0));
    assert.equal((await deliver(event("customer.subscription.created", incomplete, t0))).status, 200);
    const [row] =
      await sql`select status, is_current from public.user_subscriptions where stripe_subscription_id = ${sub}`;
    assert.deepEqual({ ...row }, { status: "active", is_current: true });
    const [user] = await sql`select plan, plan_status from public.users where id = ${u.id}`;
    assert.deepEqual({ ...user }, { plan: "pro", plan_status: "active" });
  },
);

webhookTest("customer.subscription.deleted puts the user back on free", async () => {
  const u = await newCustomer();
  const sub = ids.subscription();
  const t0 = Math.floor(Date.now() / 1000);
  await deliver(
    event(
      "customer.subscription.updated",
      subscription({ id: sub, customer: u.customer, price: PRICES.proMonthly }),
      t0,
    ),
  );
  const ended = subscription({ id: sub, customer: u.customer, price: PRICES.proMonthly, status: "canceled" });
  assert.equal((await deliver(event("customer.subscription.deleted", ended, t0 + 1))).status, 200);
  const [user] = await sql`select plan, stripe_subscription_id from public.users where id = ${u.id}`;
  assert.deepEqual({ ...user }, { plan: "free", stripe_subscription_id: null });
  const [row] =
    await sql`select status, is_current from public.user_subscriptions where stripe_subscription_id = ${sub}`;
  // Still the user's current subscription (their newest), but not live: it gives no paid plan.
  assert.deepEqual({ ...row }, { status: "canceled", is_current: true });
});

webhookTest("each refund debits its share of a token pack once, by its refund id", async () => {
  const u = await newCustomer();
  const pi = ids.paymentIntent();
  await deliver(
    event(
      "checkout.session.completed",
      checkoutPayment({ ...u, userId: u.id, packId: "pack_1m", tokens: 1_000_000, pi }),
    ),
  );
  const ch = ids.charge();
  const first = refund({ charge: ch, pi, amount: 500 });
  assert.deepEqual(await deliver(event("refund.created", first)), {
    status: 200,
    body: { received: true, status: "processed" },
  });
  assert.equal(await balance(u.id), 500_000);
  // charge.refunded lists no refunds (API version 2022-11-15 on): recorded, changes nothing.
  assert.deepEqual(
    await deliver(
      event("charge.refunded", charge({ id: ch, pi, customer: u.customer, amount: 1000, refunded: 500 })),
    ),
    { status: 200, body: { received: true, status: "ignored" } },
  );
  assert.equal(await balance(u.id), 500_000);
  // The same refund again, as refund.updated and as an expanded charge.refunded: no second debit.
  assert.equal((await deliver(event("refund.updated", first))).status, 200);
  const expanded = {
    ...charge({ id: ch, pi, customer: u.customer, amount: 1000, refunded: 500 }),
    refunds: { object: "list", data: [first], has_more: false, url: `/v1/charges/${ch}/refunds` },
  };
  assert.equal((await deliver(event("charge.refunded", expanded))).status, 200);
  assert.equal(await balance(u.id), 500_000);
  await deliver(event("refund.created", refund({ charge: ch, pi, amount: 500 })));
  assert.equal(await balance(u.id), 0);
  const rows = await sql`select reference from public.token_transactions
                          where user_id = ${u.id} and reason = 'token_pack_refund' order by id`;
  assert.equal(rows.length, 2);
  assert.ok(rows.every((r) => /^refund:re_[A-Za-z0-9]+$/.test(r.reference)), "each debit names its refund");
});

webhookTest("20 concurrent deliveries of one event credit once and all answer 200", async () => {
  const u = await newCustomer();
  const evt = event(
    "checkout.session.completed",
    checkoutPayment({ ...u, userId: u.id, packId: "pack_5m", tokens: 5_000_000 }),
  );
  const results = await Promise.all(Array.from({ length: 20 }, () => deliver(evt)));
  assert.deepEqual(results.map((r) => r.status), Array(20).fill(200));
  assert.equal(results.filter((r) => r.body.status === "processed").length, 1);
  assert.equal(results.filter((r) => r.body.status === "duplicate").length, 19);
  assert.equal(await balance(u.id), 5_000_000);
  const [row] = await sql`select status, attempts from private.stripe_webhook_events where id = ${evt.id}`;
  assert.deepEqual({ ...row }, { status: "processed", attempts: 1 });
});

webhookTest("an event type the webhook does not handle is recorded and acknowledged", async () => {
  const evt = event("customer.created", { id: ids.customer(), object: "customer" });
  assert.deepEqual(await deliver(evt), { status: 200, body: { received: true, status: "ignored" } });
  assert.equal((await eventRow(evt.id)).status, "ignored");
});

// --- refusals: the right 4xx, and nothing written but the audit row ---------------------------------

async function refused(
  init: { method?: string; headers?: Record<string, string>; body?: BodyInit | null },
  status: number,
  code: string,
) {
  const requestId = `test-${crypto.randomUUID()}`;
  const before = Number((await sql`select count(*) from private.stripe_webhook_events`)[0].count);
  const res = await fetch(webhookUrl(), {
    method: init.method ?? "POST",
    headers: { "x-request-id": requestId, ...init.headers },
    body: init.body,
  });
  const body = await res.json();
  assert.equal(res.status, status, JSON.stringify(body));
  assert.equal(body.error.code, code);
  const after = Number((await sql`select count(*) from private.stripe_webhook_events`)[0].count);
  assert.equal(after, before, "a refused delivery records no event");
  return { requestId, body };
}

webhookTest("a bad signature is 400 and only audited", async () => {
  const payload = JSON.stringify(event("checkout.session.completed", {}));
  const { requestId } = await refused(
    {
      headers: {
        "content-type": "application/json",
        "stripe-signature": await signature(payload, { secret: "whsec_wrong" }),
      },
      body: payload,
    },
    400,
    "invalid_request",
  );
  const audit = await auditRows(requestId);
  assert.deepEqual(audit.map((r) => ({ ...r })), [{
    outcome: "rejected",
    http_status: 400,
    reason: "Invalid Stripe signature",
  }]);
});

webhookTest("a missing signature is 400", async () => {
  await refused({ headers: { "content-type": "application/json" }, body: "{}" }, 400, "invalid_request");
});

webhookTest("a signature older than the 300 s tolerance is 400", async () => {
  const payload = JSON.stringify(event("checkout.session.completed", {}));
  const stale = Math.floor(Date.now() / 1000) - 301;
  await refused(
    {
      headers: {
        "content-type": "application/json",
        "stripe-signature": await signature(payload, { timestamp: stale }),
      },
      body: payload,
    },
    400,
    "invalid_request",
  );
});

webhookTest("a body over 1 MB is 413, by Content-Length and when streamed", async () => {
  const big = JSON.stringify({ pad: "x".repeat(1024 * 1024) });
  const { requestId } = await refused(
    { headers: { "content-type": "application/json", "stripe-signature": "t=1,v1=x" }, body: big },
    413,
    "payload_too_large",
  );
  assert.equal((await auditRows(requestId))[0].http_status, 413);
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      for (let i = 0; i < 17; i++) c.enqueue(new Uint8Array(64 * 1024).fill(32));
      c.close();
    },
  });
  await refused(
    { headers: { "content-type": "application/json", "stripe-signature": "t=1,v1=x" }, body: stream },
    413,
    "payload_too_large",
  );
});

webhookTest("a method other than POST is 405 and audited once", async () => {
  const { requestId } = await refused({ method: "GET" }, 405, "method_not_allowed");
  assert.deepEqual((await auditRows(requestId)).map((r) => ({ ...r })), [{
    outcome: "rejected",
    http_status: 405,
    reason: "Method GET not allowed",
  }]);
});

/** A correctly signed body that is not an event we can record: 400, one audit row, nothing else. */
async function signedButRefused(payload: string, reason: RegExp) {
  const { requestId, body } = await refused(
    {
      headers: { "content-type": "application/json", "stripe-signature": await signature(payload) },
      body: payload,
    },
    400,
    "invalid_request",
  );
  assert.match(body.error.message, reason);
  const audit = await auditRows(requestId);
  assert.equal(audit.length, 1, "exactly one audit row");
  assert.equal(audit[0].outcome, "rejected");
  assert.equal(audit[0].http_status, 400);
  assert.match(audit[0].reason, reason);
}

webhookTest("a signed event whose created is not epoch seconds is 400 and audited once", async () => {
  for (const created of ['"yesterday"', "1e20", "-5", "1795000000.5", "null"]) {
    const payload = JSON.stringify(event("customer.created", { id: ids.customer() })).replace(
      /"created":\d+/,
      `"created":${created}`,
    );
    await signedButRefused(payload, /created is not a time in epoch seconds/);
  }
});

webhookTest("a signed event whose id is not an event id is 400 and audited once", async () => {
  for (const id of ["not_an_event", "evt_", "evt_x;drop table", "x".repeat(300)]) {
    const payload = JSON.stringify({ ...event("customer.created", { id: ids.customer() }), id });
    await signedButRefused(payload, /id is not a Stripe event id/);
  }
  await signedButRefused(
    JSON.stringify({ ...event("customer.created", { id: ids.customer() }), type: "Invoice Paid!" }),
    /type is not a Stripe event type/,
  );
  await signedButRefused(
    JSON.stringify({ ...event("customer.created", { id: ids.customer() }), type: 42 }),
    /not a Stripe event/,
  );
  await signedButRefused(
    JSON.stringify({ ...event("customer.created", {}), data: { object: "x" } }),
    /data.object is not an object/,
  );
});

webhookTest(
  "a signed event with a string Postgres cannot store (NUL, a lone surrogate) is 400 and audited",
  async () => {
    const nul = JSON.stringify(event("customer.created", { id: ids.customer(), name: "a\u0000b" }));
    assert.ok(nul.includes("\\u0000"));
    await signedButRefused(nul, /cannot be stored/);
    const surrogate = JSON.stringify(event("customer.created", { id: ids.customer(), object: "customer" }))
      .replace(
        '"object":"customer"',
        '"object":"customer","name":"\\ud800"',
      );
    await signedButRefused(surrogate, /cannot be stored/);
  },
);

webhookTest("a content type other than JSON is 415", async () => {
  await refused(
    { headers: { "content-type": "text/plain", "stripe-signature": "t=1,v1=x" }, body: "{}" },
    415,
    "unsupported_media_type",
  );
});

webhookTest("a correctly signed body that is not JSON is 400", async () => {
  const payload = "not json at all";
  await refused(
    {
      headers: { "content-type": "application/json", "stripe-signature": await signature(payload) },
      body: payload,
    },
    400,
    "invalid_request",
  );
});

webhookTest("deliveries over the per-IP rate limit get 429 with Retry-After", async () => {
  // The test env allows 60 per minute per IP (STRIPE_WEBHOOK_RATE_LIMIT_PER_MINUTE).
  const send = () =>
    fetch(webhookUrl(), { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
  const first = await Promise.all(Array.from({ length: 60 }, send));
  await Promise.all(first.map((r) => r.body?.cancel()));
  assert.ok(first.every((r) => r.status === 400), "the first 60 reach signature verification");
  const limited = await send();
  const body = await limited.json();
  assert.equal(limited.status, 429);
  assert.equal(body.error.code, "rate_limited");
  assert.ok(Number(limited.headers.get("retry-after")) >= 1);
  assert.equal(limited.headers.get("x-ratelimit-limit"), "60");
  await resetRateLimit();
});

// --- failures: dead letters and replay ---------------------------------------------------------------

webhookTest(
  "an event that fails 3 times is dead-lettered, and a replay applies it exactly once",
  async () => {
    // A pack bought by a user whose stored Stripe customer is another one (an operator must look): applying
    // it fails until the stored customer is corrected.
    const u = await newCustomer();
    const userId = u.id;
    const customer = ids.customer();
    const evt = event(
      "checkout.session.completed",
      checkoutPayment({ customer, userId, packId: "pack_1m", tokens: 1_000_000 }),
    );
    for (let attempt = 1; attempt <= 3; attempt++) {
      const res = await deliver(evt);
      assert.equal(res.status, 500);
      assert.deepEqual(res.body, {
        error: {
          code: "internal_error",
          message: "The event could not be applied; it is recorded and will be retried",
        },
      });
      assert.equal((await eventRow(evt.id)).attempts, attempt);
    }
    const [dead] = await sql`select attempts, jsonb_array_length(errors) as errors, resolved_at
                             from private.failed_webhook_events where event_id = ${evt.id}`;
    assert.deepEqual({ ...dead }, { attempts: 3, errors: 3, resolved_at: null });

    await sql`update public.users set stripe_customer_id = ${customer} where id = ${userId}`;
    const [replay] = await sql`select * from private.replay_failed_webhook_event(${evt.id})`;
    assert.equal(replay.status, "processed");
    const [again] = await sql`select * from private.replay_failed_webhook_event(${evt.id})`;
    assert.equal(again.status, "duplicate");
    assert.equal((await deliver(evt)).body.status, "duplicate");
    assert.equal(await balance(userId), 1_000_000);
    const [resolved] =
      await sql`select resolved_at from private.failed_webhook_events where event_id = ${evt.id}`;
    assert.ok(resolved.resolved_at instanceof Date);
  },
);

// --- the IP allow-list, with the handler itself served on a port of its own -----------------------------

async function withHandler(allowedIps: readonly string[] | null, fn: (url: string) => Promise<void>) {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (req, info) => {
      const headers = new Headers(req.headers);
      headers.set("x-forwarded-for", info.remoteAddr.hostname); // what the gateway does
      return stripeWebhookHandler({ allowedIps, rateLimit: { limit: 1000, windowSeconds: 60 } })(
        new Request(req, { headers }),
      );
    },
  );
  try {
    await fn(`http://127.0.0.1:${server.addr.port}/stripe-webhook`);
  } finally {
    await server.shutdown();
  }
}

Deno.test({
  name: "with the IP allow-list on, a delivery from an address not on Stripe's list is 403 and audited",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const env = { STRIPE_WEBHOOK_SECRET: "whsec_test_local_webhook_secret", SUPABASE_DB_URL: stack.dbUrl };
    for (const [k, v] of Object.entries(env)) Deno.env.set(k, v);
    const evt = event("customer.created", { id: ids.customer(), object: "customer" });
    const payload = JSON.stringify(evt);
    const post = async (url: string) => {
      const requestId = `test-${crypto.randomUUID()}`;
      const res = await fetch(url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "stripe-signature": await signature(payload),
          "x-request-id": requestId,
        },
        body: payload,
      });
      return { status: res.status, body: await res.json(), requestId };
    };
    assert.ok(!STRIPE_WEBHOOK_IPS.includes("127.0.0.1"));
    await withHandler(STRIPE_WEBHOOK_IPS, async (url) => {
      const res = await post(url);
      assert.equal(res.status, 403);
      assert.equal(res.body.error.code, "forbidden");
      assert.equal((await auditRows(res.requestId))[0].http_status, 403);
      assert.equal(await eventRow(evt.id), undefined);
    });
    await withHandler(["127.0.0.1"], async (url) => {
      const res = await post(url);
      assert.equal(res.status, 200);
    });
  },
});

Deno.test("webhook test teardown", async () => {
  await deleteTestUsers(sql, users);
  await sql.end();
});
