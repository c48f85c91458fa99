// What the Stripe webhook credits and debits, rule by rule, over HTTP through the local platform: an invoice
// is credited from what it bills (its subscription period lines, read whole — from Stripe's API when the
// payload cuts them off), not from today's subscription row; incomplete is not live; a stale second
// subscription never takes over; a refund is keyed by its refund id and applied even when it arrives before
// its purchase; a dispute debits like a refund and a won one gives back; events of a customer with no user
// here are acknowledged and recorded as ignored.
import assert from "node:assert/strict";
import { deleteTestUsers, testSql, type TestUser } from "./_lib/db.ts";
import { startFakeStripe } from "./_lib/fake-stripe.ts";
import {
  checkoutPayment,
  checkoutSubscription,
  deliver,
  dispute,
  event,
  ids,
  invoice,
  invoiceLine,
  paymentIntent,
  refund,
  subscription,
} from "./_lib/stripe-events.ts";
import { type Customer, PRICES, webhookSuite } from "./_lib/stripe-webhook.ts";

const sql = testSql();
const users: TestUser[] = [];
const { test, newCustomer, balance, eventRow } = webhookSuite(sql, users);
const DAY = 86400;
const now = () => Math.floor(Date.now() / 1000);

const allowance = async (plan: string) =>
  Number(
    (await sql`select monthly_token_allowance from public.subscription_plans where id = ${plan}`)[0]
      .monthly_token_allowance,
  );
const ledger = async (userId: string) =>
  (await sql`select reference, reason, delta::text as delta from public.token_transactions
              where user_id = ${userId} order by id`).map((r) => ({ ...r }));
const userPlan = async (userId: string) => ({
  ...(await sql`select plan, plan_status, stripe_subscription_id from public.users where id = ${userId}`)[0],
});

/** Delivers and expects a 2xx with this status (processed, ignored, duplicate). */
async function expect(status: string, evt: ReturnType<typeof event>) {
  const res = await deliver(evt);
  assert.deepEqual(
    res,
    { status: 200, body: { received: true, status } },
    `${evt.type}: ${JSON.stringify(res.body)}`,
  );
}

async function onPro(u: Customer, start = now()) {
  const sub = ids.subscription();
  await expect(
    "processed",
    event(
      "customer.subscription.updated",
      subscription({ id: sub, customer: u.customer, price: PRICES.proMonthly, start, userId: u.id }),
      start,
    ),
  );
  return sub;
}

// -------------------------------------------------------------------------------- invoices, whole

test("an invoice with proration, one-off and period lines credits what its period line bills", async () => {
  const u = await newCustomer();
  const sub = await onPro(u);
  const t = now();
  // The subscription row still says pro; the invoice bills a max period after an upgrade: max is credited.
  const inv = invoice({
    customer: u.customer,
    sub,
    userId: u.id,
    billingReason: "subscription_update",
    lines: (id) => [
      invoiceLine({
        invoice: id,
        price: PRICES.proMonthly,
        start: t,
        end: t + 9 * DAY,
        amount: -870,
        kind: "proration",
        sub,
      }),
      invoiceLine({
        invoice: id,
        price: PRICES.maxMonthly,
        start: t,
        end: t + 9 * DAY,
        amount: 2970,
        kind: "proration",
        sub,
      }),
      invoiceLine({
        invoice: id,
        price: "price_onboarding_fee",
        start: t,
        end: t,
        amount: 5000,
        kind: "invoice_item",
      }),
      invoiceLine({
        invoice: id,
        price: PRICES.maxMonthly,
        start: t,
        end: t + 30 * DAY,
        amount: 9900,
        kind: "period",
        sub,
      }),
    ],
  });
  await expect("processed", event("invoice.paid", inv, t));
  assert.deepEqual(await ledger(u.id), [{
    reference: `invoice:${inv.id}`,
    reason: "subscription_allowance",
    delta: String(await allowance("max")),
  }]);
  assert.equal((await userPlan(u.id)).plan, "pro", "an invoice never changes the subscription");
});

test("a proration-only invoice credits nothing, and says why", async () => {
  const u = await newCustomer();
  const sub = await onPro(u);
  const t = now();
  const inv = invoice({
    customer: u.customer,
    sub,
    userId: u.id,
    billingReason: "subscription_update",
    lines: (id) => [
      invoiceLine({
        invoice: id,
        price: PRICES.proMonthly,
        start: t,
        end: t + 9 * DAY,
        amount: -870,
        kind: "proration",
        sub,
      }),
      invoiceLine({
        invoice: id,
        price: PRICES.maxMonthly,
        start: t,
        end: t + 9 * DAY,
        amount: 2970,
        kind: "proration",
        sub,
      }),
    ],
  });
  const evt = event("invoice.paid", inv, t);
  await expect("ignored", evt);
  assert.deepEqual(await ledger(u.id), []);
  assert.match((await eventRow(evt.id)).ignored_reason, /no subscription period/);
});

test("a yearly invoice credits twelve months of its plan", async () => {
  const u = await newCustomer();
  const sub = await onPro(u);
  const inv = invoice({ customer: u.customer, sub, userId: u.id, price: PRICES.proYearly });
  await expect("processed", event("invoice.payment_succeeded", inv));
  assert.equal(await balance(u.id), 12 * await allowance("pro"));
});

test("an invoice whose lines Stripe cut off is read whole from the API, and a failing API is retried", async () => {
  await using stripe = await startFakeStripe();
  const u = await newCustomer();
  const sub = await onPro(u);
  const t = now();
  const id = ids.invoice();
  // Eleven proration lines first, the period line last: the payload's first page has no period line.
  const lines = [
    ...Array.from({ length: 11 }, (_, i) =>
      invoiceLine({
        invoice: id,
        price: i % 2 ? PRICES.proMonthly : PRICES.maxMonthly,
        start: t - DAY,
        end: t,
        amount: i % 2 ? -100 : 100,
        kind: "proration",
        sub,
      })),
    invoiceLine({
      invoice: id,
      price: PRICES.maxMonthly,
      start: t,
      end: t + 30 * DAY,
      amount: 9900,
      kind: "period",
      sub,
    }),
  ];
  const inv = invoice({ id, customer: u.customer, sub, userId: u.id, lines: () => lines, firstPage: 10 });
  assert.equal(inv.lines.has_more, true);
  assert.equal(inv.lines.data.length, 10);
  stripe.seedInvoiceLines(id, lines);
  const evt = event("invoice.paid", inv, t);

  stripe.fail({ times: 3, status: 500 }); // the SDK retries twice: all three fail
  const failed = await deliver(evt);
  assert.equal(failed.status, 502);
  assert.equal(await eventRow(evt.id), undefined, "nothing recorded: Stripe delivers it again");

  await expect("processed", evt);
  assert.equal(await balance(u.id), await allowance("max"));
  const pages = stripe.requestsTo("GET", `/v1/invoices/${id}/lines`).filter((r) => r.status === 200);
  assert.ok(pages.length >= 1, "the lines were read from the API");
  const [stored] =
    await sql`select jsonb_array_length(payload -> 'data' -> 'object' -> 'lines' -> 'data') as n,
                                    payload -> 'data' -> 'object' -> 'lines' -> 'has_more' as has_more
                               from private.stripe_webhook_events where id = ${evt.id}`;
  assert.deepEqual({ ...stored }, { n: 12, has_more: false }, "the event is stored with every line");
});

test("a renewal paid before the cancellation but delivered after it is still credited", async () => {
  const u = await newCustomer();
  const t = now();
  const sub = await onPro(u, t);
  await expect(
    "processed",
    event(
      "customer.subscription.deleted",
      subscription({
        id: sub,
        customer: u.customer,
        price: PRICES.proMonthly,
        status: "canceled",
        userId: u.id,
      }),
      t + 20,
    ),
  );
  const renewal = invoice({
    customer: u.customer,
    sub,
    userId: u.id,
    price: PRICES.proMonthly,
    start: t + 10,
  });
  await expect("processed", event("invoice.paid", renewal, t + 10));
  assert.equal(await balance(u.id), await allowance("pro"));
  assert.deepEqual(await userPlan(u.id), {
    plan: "free",
    plan_status: "active",
    stripe_subscription_id: null,
  });
});

test("invoice.paid and invoice.payment_succeeded credit once whatever the subscription did in between", async () => {
  const u = await newCustomer();
  const t = now();
  const sub = await onPro(u, t);
  const inv = invoice({ customer: u.customer, sub, userId: u.id, price: PRICES.proMonthly, start: t });
  await expect("processed", event("invoice.paid", inv, t + 1));
  // In between: an upgrade to max, then the deletion.
  await expect(
    "processed",
    event(
      "customer.subscription.updated",
      subscription({ id: sub, customer: u.customer, price: PRICES.maxMonthly }),
      t + 2,
    ),
  );
  await expect(
    "processed",
    event(
      "customer.subscription.deleted",
      subscription({ id: sub, customer: u.customer, price: PRICES.maxMonthly, status: "canceled" }),
      t + 3,
    ),
  );
  await expect("processed", event("invoice.payment_succeeded", inv, t + 1));
  assert.deepEqual(await ledger(u.id), [{
    reference: `invoice:${inv.id}`,
    reason: "subscription_allowance",
    delta: String(await allowance("pro")),
  }]);
  const [dead] = await sql`select count(*)::int as n from private.failed_webhook_events f
                             join private.stripe_webhook_events e on e.id = f.event_id
                            where e.payload -> 'data' -> 'object' ->> 'id' = ${inv.id}`;
  assert.equal(dead.n, 0);
});

// ----------------------------------------------------------------------------------- what is live

test("an incomplete subscription gives no paid plan, here or in the gateway", async () => {
  const u = await newCustomer();
  const sub = ids.subscription();
  await expect(
    "processed",
    event(
      "customer.subscription.created",
      subscription({
        id: sub,
        customer: u.customer,
        price: PRICES.maxMonthly,
        status: "incomplete",
        userId: u.id,
      }),
    ),
  );
  assert.deepEqual(await userPlan(u.id), {
    plan: "free",
    plan_status: "active",
    stripe_subscription_id: null,
  });
  const lease = `test-${crypto.randomUUID()}`;
  const [granted] = await sql`
    select plan, requests_per_minute from private.gateway_lease(jsonb_populate_record(null::private.lease_request,
      ${
    JSON.stringify({
      user_id: u.id,
      provider: "openai",
      lease_id: lease,
      model: "gpt-4o-mini",
      input_estimate: 10,
      requested_output: 10,
      check_limits: false,
    })
  }::text::jsonb))`;
  await sql`select private.gateway_release(${lease})`;
  const [free] = await sql`select requests_per_minute from public.subscription_plans where id = 'free'`;
  assert.deepEqual({ ...granted }, { plan: "free", requests_per_minute: free.requests_per_minute });
  // Once paid it is live.
  await expect(
    "processed",
    event(
      "customer.subscription.updated",
      subscription({ id: sub, customer: u.customer, price: PRICES.maxMonthly }),
      now() + 1,
    ),
  );
  assert.deepEqual(await userPlan(u.id), { plan: "max", plan_status: "active", stripe_subscription_id: sub });
});

test("a stale second subscription (incomplete, then expired) never takes over or ends the live one", async () => {
  for (const staleFirst of [false, true]) {
    const u = await newCustomer();
    const t = now();
    const live = ids.subscription(), stale = ids.subscription();
    const staleEvents = [
      event(
        "customer.subscription.created",
        subscription({
          id: stale,
          customer: u.customer,
          price: PRICES.maxMonthly,
          status: "incomplete",
          created: t + 5,
        }),
        t + 5,
      ),
      event(
        "customer.subscription.updated",
        subscription({
          id: stale,
          customer: u.customer,
          price: PRICES.maxMonthly,
          status: "incomplete_expired",
          created: t + 5,
        }),
        t + 6,
      ),
    ];
    const liveEvent = event(
      "customer.subscription.updated",
      subscription({ id: live, customer: u.customer, price: PRICES.proMonthly, created: t, start: t }),
      t,
    );
    for (const evt of staleFirst ? [...staleEvents, liveEvent] : [liveEvent, ...staleEvents]) {
      await expect("processed", evt);
    }
    assert.deepEqual(await userPlan(u.id), {
      plan: "pro",
      plan_status: "active",
      stripe_subscription_id: live,
    });
    const rows = await sql`select stripe_subscription_id, is_current from public.user_subscriptions
                            where user_id = ${u.id} and is_current`;
    assert.deepEqual(rows.map((r) => r.stripe_subscription_id), [live]);
  }
});

test("a paid checkout stands until the subscription's own events arrive, and an incomplete snapshot cannot undo it", async () => {
  const u = await newCustomer();
  const sub = ids.subscription();
  const t = now();
  await expect(
    "processed",
    event(
      "checkout.session.completed",
      checkoutSubscription({ customer: u.customer, userId: u.id, plan: "pro", period: "monthly", sub }),
      t,
    ),
  );
  await expect(
    "processed",
    event(
      "customer.subscription.created",
      subscription({ id: sub, customer: u.customer, price: PRICES.proMonthly, status: "incomplete" }),
      t,
    ),
  );
  assert.deepEqual(await userPlan(u.id), { plan: "pro", plan_status: "active", stripe_subscription_id: sub });
});

// ------------------------------------------------------------------------------ refunds and disputes

async function boughtPack(u: Customer, tokens = 1_000_000) {
  const pi = ids.paymentIntent();
  await expect(
    "processed",
    event(
      "payment_intent.succeeded",
      paymentIntent({ id: pi, customer: u.customer, userId: u.id, packId: "pack_1m", tokens }),
    ),
  );
  return { pi, ch: ids.charge() };
}

test("a refund that arrives before its purchase is applied when the credit lands", async () => {
  const u = await newCustomer();
  const pi = ids.paymentIntent(), ch = ids.charge();
  const re = refund({ charge: ch, pi, amount: 400 });
  await expect("processed", event("refund.created", re));
  assert.equal(await balance(u.id), 0, "nothing to take back yet");
  await expect(
    "processed",
    event(
      "checkout.session.completed",
      checkoutPayment({ customer: u.customer, userId: u.id, packId: "pack_1m", tokens: 1_000_000, pi }),
    ),
  );
  assert.equal(await balance(u.id), 600_000, "credited 1 000 000, the earlier refund debited 400 000");
  assert.deepEqual((await ledger(u.id)).map((r) => r.reference), [`pi:${pi}`, `refund:${re.id}`]);
});

test("the same refund seen again is a no-op whatever the balance did in between", async () => {
  const u = await newCustomer();
  const { pi, ch } = await boughtPack(u);
  await sql`select private.update_user_token_balance(${u.id}, -900000, 'usage', ${"test:spend:" + u.id})`;
  const re = refund({ charge: ch, pi, amount: 500 });
  await expect("processed", event("refund.created", re));
  assert.equal(await balance(u.id), 0, "what was left is taken, the rest is a recorded shortfall");
  const [debit] = await sql`select delta, metadata ->> 'shortfall' as shortfall from public.token_transactions
                             where reference = ${"refund:" + re.id}`;
  assert.deepEqual({ ...debit }, { delta: "-100000", shortfall: "400000" });
  await sql`select private.update_user_token_balance(${u.id}, 700000, 'adjustment', ${"test:gift:" + u.id})`;
  await expect("processed", event("refund.updated", re));
  await expect("processed", event("refund.updated", { ...re, metadata: { note: "seen again" } }));
  assert.equal(await balance(u.id), 700_000);

  // A refund that found nothing at all to take is remembered too: tokens gained later are never taken for it.
  const second = await boughtPack(u);
  await sql`select private.update_user_token_balance(${u.id}, -1700000, 'usage', ${"test:spend2:" + u.id})`;
  const nothing = refund({ charge: second.ch, pi: second.pi, amount: 1000 });
  await expect("processed", event("refund.created", nothing));
  assert.equal(await balance(u.id), 0);
  const [takeback] = await sql`select share_tokens, taken_tokens from private.token_pack_takebacks
                                where reference = ${"refund:" + nothing.id}`;
  assert.deepEqual({ ...takeback }, { share_tokens: "1000000", taken_tokens: "0" });
  await sql`select private.update_user_token_balance(${u.id}, 500000, 'adjustment', ${"test:gift2:" + u.id})`;
  await expect("processed", event("refund.updated", nothing));
  assert.equal(await balance(u.id), 500_000);
});

test("a failed refund gives back what it took, once", async () => {
  const u = await newCustomer();
  const { pi, ch } = await boughtPack(u);
  const re = refund({ charge: ch, pi, amount: 1000, status: "pending" });
  await expect("processed", event("refund.created", re, now()));
  assert.equal(await balance(u.id), 0);
  await expect("processed", event("refund.failed", { ...re, status: "failed" }, now() + 1));
  await expect("processed", event("refund.updated", { ...re, status: "failed" }, now() + 2));
  assert.equal(await balance(u.id), 1_000_000);
  assert.deepEqual((await ledger(u.id)).map((r) => r.reason), [
    "token_pack_purchase",
    "token_pack_refund",
    "token_pack_reinstated",
  ]);
});

test("a dispute debits like a refund; a lost one nothing more, a won one gives back, an inquiry nothing", async () => {
  const u = await newCustomer();
  const lost = await boughtPack(u);
  const dpLost = dispute({ charge: lost.ch, pi: lost.pi, amount: 1000, status: "needs_response" });
  await expect("processed", event("charge.dispute.created", dpLost, now()));
  assert.equal(await balance(u.id), 0);
  await expect("processed", event("charge.dispute.closed", { ...dpLost, status: "lost" }, now() + 1));
  assert.equal(await balance(u.id), 0);

  const won = await boughtPack(u);
  const dpWon = dispute({ charge: won.ch, pi: won.pi, amount: 500, status: "needs_response" });
  await expect("processed", event("charge.dispute.created", dpWon, now()));
  assert.equal(await balance(u.id), 500_000);
  await expect("processed", event("charge.dispute.closed", { ...dpWon, status: "won" }, now() + 1));
  assert.equal(await balance(u.id), 1_000_000);

  const asked = await boughtPack(u);
  await expect(
    "processed",
    event(
      "charge.dispute.created",
      dispute({ charge: asked.ch, pi: asked.pi, amount: 1000, status: "warning_needs_response" }),
    ),
  );
  assert.equal(await balance(u.id), 2_000_000);
  // A lost dispute whose closing arrives first: debited once, its earlier "created" changes nothing more.
  const late = await boughtPack(u);
  const dpLate = dispute({ charge: late.ch, pi: late.pi, amount: 1000, status: "lost" });
  await expect("processed", event("charge.dispute.closed", dpLate, now() + 5));
  await expect("processed", event("charge.dispute.created", { ...dpLate, status: "needs_response" }, now()));
  assert.equal(await balance(u.id), 2_000_000);
  assert.deepEqual(
    (await ledger(u.id)).filter((r) => r.reason !== "token_pack_purchase").map((r) => [r.reason, r.delta]),
    [
      ["token_pack_dispute", "-1000000"],
      ["token_pack_dispute", "-500000"],
      ["token_pack_reinstated", "500000"],
      ["token_pack_dispute", "-1000000"],
    ],
  );
});

// ------------------------------------------------------------------------------------- unknown users

test("events of a Stripe customer with no user here are acknowledged and recorded as ignored, with why", async () => {
  const customer = ids.customer(), sub = ids.subscription(), pi = ids.paymentIntent();
  const stranger = crypto.randomUUID(); // a deleted user, or another app's metadata
  const events = [
    event("customer.subscription.updated", subscription({ id: sub, customer, price: PRICES.proMonthly })),
    event("invoice.paid", invoice({ customer, sub, price: PRICES.proMonthly })),
    event("invoice.payment_failed", invoice({ customer, sub, price: PRICES.proMonthly, status: "open" })),
    event(
      "checkout.session.completed",
      checkoutSubscription({ customer, userId: stranger, plan: "pro", period: "monthly" }),
    ),
    event(
      "payment_intent.succeeded",
      paymentIntent({ id: pi, customer, userId: stranger, packId: "pack_1m", tokens: 5 }),
    ),
  ];
  for (const evt of events) {
    await expect("ignored", evt);
    const row = await eventRow(evt.id);
    assert.equal(row.status, "ignored");
    assert.match(row.ignored_reason, new RegExp(`no user here for Stripe customer ${customer}`));
    const [audit] =
      await sql`select outcome, http_status, reason from private.webhook_audit_log where event_id = ${evt.id}`;
    assert.deepEqual({ ...audit }, {
      outcome: "accepted",
      http_status: 200,
      reason: `ignored: no user here for Stripe customer ${customer}`,
    });
  }
  const [dead] = await sql`select count(*)::int as n from private.failed_webhook_events
                            where event_id = any(${events.map((e) => e.id)})`;
  assert.equal(dead.n, 0);
});

Deno.test("stripe rules test teardown", async () => {
  await deleteTestUsers(sql, users);
  await sql.end();
});
