// Order independence of the Stripe webhook, as a property over delivery orders (fast-check): a whole
// subscription life and a whole token pack life, delivered the way Stripe delivers them — at least once, in
// any order, some deliveries at the same moment, and with every `created` in the same second — end in the
// same users row, user_subscriptions rows, token balance, token ledger and notifications as in order.
// Events are signed by the stripe SDK and delivered over HTTP to the webhook handler itself (served here with
// a per-IP limit high enough for a few thousand deliveries); the database is the stack's.
import assert from "node:assert/strict";
import fc from "npm:fast-check@4.10.2";
import { stripeWebhookHandler } from "../stripe-webhook/handler.ts";
import { createTestUser, deleteTestUsers, testSql, type TestUser } from "./_lib/db.ts";
import { stack } from "./_lib/stack.ts";
import {
  charge,
  checkoutPayment,
  checkoutSubscription,
  deliver,
  event,
  invoice,
  invoiceLine,
  paymentIntent,
  refund,
  type StripeEventJson,
  subscription,
  WEBHOOK_SECRET,
} from "./_lib/stripe-events.ts";

// Thousands of deliveries: the handler's info lines would bury the test's own output.
Deno.env.set("LOG_LEVEL", "warn");

const sql = testSql();
const users: TestUser[] = [];
const RUNS = Number(Deno.env.get("STRIPE_ORDER_RUNS") ?? 200);
const PRICE = { pro: "price_local_pro_monthly", max: "price_local_max_monthly" };
const DAY = 86400;
const T = 1_800_000_000; // 2027-01-15: every life happens then, so runs compare equal

/** One run's ids: fixed-width, so event ids of a run sort by their index as in every other run. */
type Run = { tag: string; user: string; customer: string };

async function newRun(): Promise<Run> {
  const tag = `R${crypto.randomUUID().replace(/-/g, "").slice(0, 12)}`;
  const customer = `cus_${tag}`;
  const user = await createTestUser(sql, { customer });
  users.push(user);
  return { tag, user: user.id, customer };
}

const at = (sameSecond: boolean, t: number) => sameSecond ? T : t;
const evt = (run: Run, n: number, type: string, object: Record<string, unknown>, created: number) =>
  event(type, object, created, { id: `evt_${run.tag}_${String(n).padStart(2, "0")}` });

// ---------------------------------------------------------------------------------------- the lives

/**
 * A subscription from checkout to deletion: created incomplete and paid (invoice.paid and
 * invoice.payment_succeeded of one invoice), a renewal, an upgrade to max with a proration invoice, a stale
 * second subscription (incomplete, then incomplete_expired), a failed renewal and its recovery, cancel at
 * period end, deleted.
 */
function subscriptionLife(run: Run, sameSecond: boolean): StripeEventJson[] {
  const a = `sub_${run.tag}A`, b = `sub_${run.tag}B`, item = `si_${run.tag}A`;
  const P1 = T, P2 = T + 30 * DAY, P3 = T + 60 * DAY;
  const sub = (o: Partial<Parameters<typeof subscription>[0]>) =>
    subscription({
      id: a,
      customer: run.customer,
      price: PRICE.pro,
      created: T,
      item,
      userId: run.user,
      ...o,
    });
  const period = (price: string, start: number) => (inv: string) => [
    invoiceLine({
      invoice: inv,
      price,
      start,
      end: start + 30 * DAY,
      amount: 2900,
      kind: "period",
      sub: a,
      item,
    }),
  ];
  const paid = (
    id: string,
    price: string,
    start: number,
    reason: "subscription_create" | "subscription_cycle",
  ) =>
    invoice({
      id,
      customer: run.customer,
      sub: a,
      userId: run.user,
      billingReason: reason,
      start,
      lines: period(price, start),
    });
  const upgrade = invoice({
    id: `in_${run.tag}3`,
    customer: run.customer,
    sub: a,
    userId: run.user,
    billingReason: "subscription_update",
    start: T + 40 * DAY,
    lines: (inv) => [
      invoiceLine({
        invoice: inv,
        price: PRICE.pro,
        start: T + 40 * DAY,
        end: P3,
        amount: -1933,
        kind: "proration",
        sub: a,
        item,
      }),
      invoiceLine({
        invoice: inv,
        price: PRICE.max,
        start: T + 40 * DAY,
        end: P3,
        amount: 6600,
        kind: "proration",
        sub: a,
        item,
      }),
    ],
  });
  const renewalFailed = { ...paid(`in_${run.tag}4`, PRICE.max, P3, "subscription_cycle"), status: "open" };
  const s = (t: number) => at(sameSecond, t);
  return [
    evt(run, 0, "customer.subscription.created", sub({ status: "incomplete", start: P1 }), s(T)),
    evt(run, 1, "invoice.paid", paid(`in_${run.tag}1`, PRICE.pro, P1, "subscription_create"), s(T + 1)),
    evt(
      run,
      2,
      "invoice.payment_succeeded",
      paid(`in_${run.tag}1`, PRICE.pro, P1, "subscription_create"),
      s(T + 1),
    ),
    evt(run, 3, "customer.subscription.updated", sub({ status: "active", start: P1 }), s(T + 1)),
    evt(
      run,
      4,
      "checkout.session.completed",
      checkoutSubscription({
        customer: run.customer,
        userId: run.user,
        plan: "pro",
        period: "monthly",
        sub: a,
        created: T - 60,
      }),
      s(T + 2),
    ),
    evt(run, 5, "invoice.paid", paid(`in_${run.tag}2`, PRICE.pro, P2, "subscription_cycle"), s(P2)),
    evt(run, 6, "customer.subscription.updated", sub({ status: "active", start: P2 }), s(P2)),
    evt(
      run,
      7,
      "customer.subscription.updated",
      sub({ status: "active", start: P2, price: PRICE.max }),
      s(T + 40 * DAY),
    ),
    evt(run, 8, "invoice.paid", upgrade, s(T + 40 * DAY)),
    evt(
      run,
      9,
      "customer.subscription.created",
      subscription({
        id: b,
        customer: run.customer,
        price: PRICE.pro,
        status: "incomplete",
        created: T + 41 * DAY,
        start: T + 41 * DAY,
        userId: run.user,
      }),
      s(T + 41 * DAY),
    ),
    evt(
      run,
      10,
      "customer.subscription.updated",
      subscription({
        id: b,
        customer: run.customer,
        price: PRICE.pro,
        status: "incomplete_expired",
        created: T + 41 * DAY,
        start: T + 41 * DAY,
        userId: run.user,
        endedAt: T + 42 * DAY,
      }),
      s(T + 42 * DAY),
    ),
    evt(run, 11, "invoice.payment_failed", renewalFailed, s(P3)),
    evt(
      run,
      12,
      "customer.subscription.updated",
      sub({ status: "past_due", start: P3, price: PRICE.max }),
      s(P3),
    ),
    evt(
      run,
      13,
      "invoice.paid",
      paid(`in_${run.tag}4`, PRICE.max, P3, "subscription_cycle"),
      s(P3 + 3 * DAY),
    ),
    evt(
      run,
      14,
      "customer.subscription.updated",
      sub({ status: "active", start: P3, price: PRICE.max }),
      s(P3 + 3 * DAY),
    ),
    evt(
      run,
      15,
      "customer.subscription.updated",
      sub({
        status: "active",
        start: P3,
        price: PRICE.max,
        cancelAtPeriodEnd: true,
        canceledAt: T + 70 * DAY,
      }),
      s(T + 70 * DAY),
    ),
    evt(
      run,
      16,
      "customer.subscription.deleted",
      sub({
        status: "canceled",
        start: P3,
        price: PRICE.max,
        cancelAtPeriodEnd: true,
        canceledAt: T + 70 * DAY,
        endedAt: T + 90 * DAY,
      }),
      s(T + 90 * DAY),
    ),
  ];
}

/**
 * A token pack bought for 1000 cents (1 000 001 tokens, so the shares round), credited by both the checkout
 * session and the payment intent, refunded 333 cents, then the other 667 (pending, then succeeded), each
 * refund also announced by charge.refunded without its refunds list (as since API version 2022-11-15).
 */
function packLife(run: Run, sameSecond: boolean): StripeEventJson[] {
  const pi = `pi_${run.tag}`, ch = `ch_${run.tag}`;
  const meta = {
    customer: run.customer,
    userId: run.user,
    packId: "pack_1m",
    tokens: 1_000_001,
    amount: 1000,
  };
  const s = (t: number) => at(sameSecond, t);
  return [
    evt(run, 0, "checkout.session.completed", checkoutPayment({ ...meta, pi, created: T - 60 }), s(T)),
    evt(run, 1, "payment_intent.succeeded", paymentIntent({ ...meta, id: pi, created: T - 60 }), s(T)),
    evt(
      run,
      2,
      "charge.succeeded",
      charge({ id: ch, pi, customer: run.customer, amount: 1000, refunded: 0 }),
      s(T),
    ),
    evt(
      run,
      3,
      "refund.created",
      refund({ id: `re_${run.tag}1`, charge: ch, pi, amount: 333, created: T + DAY }),
      s(T + DAY),
    ),
    evt(
      run,
      4,
      "charge.refunded",
      charge({ id: ch, pi, customer: run.customer, amount: 1000, refunded: 333 }),
      s(T + DAY),
    ),
    evt(
      run,
      5,
      "refund.created",
      refund({ id: `re_${run.tag}2`, charge: ch, pi, amount: 667, status: "pending", created: T + 2 * DAY }),
      s(T + 2 * DAY),
    ),
    evt(
      run,
      6,
      "refund.updated",
      refund({
        id: `re_${run.tag}2`,
        charge: ch,
        pi,
        amount: 667,
        status: "succeeded",
        created: T + 2 * DAY,
      }),
      s(T + 2 * DAY + 60),
    ),
    evt(
      run,
      7,
      "charge.refunded",
      charge({ id: ch, pi, customer: run.customer, amount: 1000, refunded: 1000 }),
      s(T + 2 * DAY + 60),
    ),
  ];
}

// ---------------------------------------------------------------------------- delivery and state

let webhookUrl = "";
const server = (() => {
  Deno.env.set("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET);
  Deno.env.set("SUPABASE_DB_URL", stack.dbUrl);
  const handler = stripeWebhookHandler({
    allowedIps: null,
    rateLimit: { limit: 1_000_000, windowSeconds: 60 },
  });
  const s = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req, info) => {
    const headers = new Headers(req.headers);
    headers.set("x-forwarded-for", info.remoteAddr.hostname); // what the platform's gateway does
    return handler(new Request(req, { headers }));
  });
  webhookUrl = `http://127.0.0.1:${s.addr.port}/stripe-webhook`;
  return s;
})();

/** A delivery plan: the order, which events come twice, and which deliveries go out at the same moment. */
type Plan = { order: number[]; twice: number[]; batches: number[] };

async function deliverAll(events: StripeEventJson[], plan: Plan): Promise<void> {
  const sequence = plan.order.flatMap((i) => plan.twice.includes(i) ? [i, i] : [i]);
  let pos = 0;
  for (let b = 0; pos < sequence.length; b++) {
    const size = plan.batches[b % plan.batches.length] ?? 1;
    const batch = sequence.slice(pos, pos + size);
    pos += size;
    const results = await Promise.all(batch.map((i) => deliver(events[i], { url: webhookUrl })));
    for (const [k, r] of results.entries()) {
      assert.equal(
        r.status,
        200,
        `${events[batch[k]].type} (${events[batch[k]].id}): ${JSON.stringify(r.body)}`,
      );
    }
  }
}

/** Everything the webhook writes for a user, with the run's ids replaced by placeholders. */
async function state(run: Run) {
  const [user] = await sql`select plan, plan_status, stripe_customer_id, stripe_subscription_id
                             from public.users where id = ${run.user}`;
  const subscriptions = await sql`
    select plan_id, billing_period, status, stripe_subscription_id, stripe_customer_id, stripe_price_id,
           current_period_start, current_period_end, cancel_at_period_end, canceled_at, ended_at, is_current,
           stripe_updated_at, stripe_created_at, stripe_event_id, state_source
      from public.user_subscriptions where user_id = ${run.user} order by stripe_subscription_id`;
  const [balance] = await sql`select balance, held from public.token_balances where user_id = ${run.user}`;
  // The running balance (balance_after) necessarily follows the delivery order; the set of changes must not.
  const ledger = await sql`select delta, reason, reference, metadata from public.token_transactions
                            where user_id = ${run.user} order by reference`;
  const notifications = await sql`select kind, dedupe_key, data from public.notifications
                                   where user_id = ${run.user} order by dedupe_key`;
  const normal = JSON.stringify({ user, subscriptions, balance, ledger, notifications })
    .replaceAll(run.tag, "RUN").replaceAll(run.user, "USER");
  return JSON.parse(normal);
}

const identity = (n: number) => Array.from({ length: n }, (_, i) => i);

/** The state one life ends in, delivered per `plan`. */
async function endState(life: typeof packLife, sameSecond: boolean, plan: Plan) {
  const run = await newRun();
  await deliverAll(life(run, sameSecond), plan);
  return await state(run);
}

const inOrder = (n: number): Plan => ({ order: identity(n), twice: [], batches: [1] });

function plans(n: number) {
  return fc.record({
    order: fc.shuffledSubarray(identity(n), { minLength: n, maxLength: n }),
    twice: fc.subarray(identity(n)),
    batches: fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 2 * n }),
  });
}

async function assertOrderIndependent(life: typeof packLife) {
  const n = life({ tag: "X", user: "u", customer: "c" }, false).length;
  const reference = {
    distinct: await endState(life, false, inOrder(n)),
    sameSecond: await endState(life, true, inOrder(n)),
  };
  const reversed: Plan = { order: identity(n).reverse(), twice: [], batches: [1] };
  await fc.assert(
    fc.asyncProperty(plans(n), fc.boolean(), async (plan, sameSecond) => {
      const got = await endState(life, sameSecond, plan);
      assert.deepEqual(got, sameSecond ? reference.sameSecond : reference.distinct);
    }),
    {
      numRuns: RUNS,
      examples: [[reversed, false], [reversed, true], [inOrder(n), true]],
      endOnFailure: true,
    },
  );
  return reference;
}

// ------------------------------------------------------------------------------------------- tests

Deno.test({
  name:
    "a subscription life ends in the same state in any delivery order, duplicated, concurrent, same second",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const { distinct, sameSecond } = await assertOrderIndependent(subscriptionLife);
    // And that state is the right one: deleted, the stale second subscription expired, back on free, three
    // period invoices credited (pro, pro, max: 35 000 000), the proration invoice nothing.
    assert.deepEqual(distinct.user, {
      plan: "free",
      plan_status: "active",
      stripe_customer_id: "cus_RUN",
      stripe_subscription_id: null,
    });
    assert.deepEqual(
      distinct.subscriptions.map((
        s: Record<string, unknown>,
      ) => [s.stripe_subscription_id, s.status, s.plan_id]),
      [["sub_RUNA", "canceled", "max"], ["sub_RUNB", "incomplete_expired", "pro"]],
    );
    assert.equal(distinct.balance.balance, String(5_000_000 + 5_000_000 + 25_000_000));
    assert.deepEqual(
      distinct.ledger.map((r: Record<string, unknown>) => [r.reference, r.delta]),
      [["invoice:in_RUN1", "5000000"], ["invoice:in_RUN2", "5000000"], ["invoice:in_RUN4", "25000000"]],
    );
    assert.deepEqual(distinct.notifications.map((n: Record<string, unknown>) => n.dedupe_key), [
      "invoice_payment_failed:in_RUN4",
    ]);
    // With every event in one second the order of Stripe's timestamps is gone, but the life still ends the
    // same way: deletion is the last stage of a subscription's life, and every invoice is credited.
    assert.deepEqual(sameSecond.user, distinct.user);
    assert.deepEqual(sameSecond.ledger, distinct.ledger);
  },
});

Deno.test({
  name: "a token pack life ends in the same state in any delivery order, duplicated, concurrent, same second",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const { distinct, sameSecond } = await assertOrderIndependent(packLife);
    // Bought once (by whichever event came first), refunded by refund id, the rounding taken with the last
    // cent: the balance ends at 0 with exactly these four ledger rows.
    assert.equal(distinct.balance.balance, "0");
    assert.deepEqual(
      distinct.ledger.map((r: Record<string, unknown>) => [r.reference, r.reason, r.delta]),
      [
        ["pi:pi_RUN", "token_pack_purchase", "1000001"],
        ["refund:re_RUN1", "token_pack_refund", "-333000"],
        ["refund:re_RUN2", "token_pack_refund", "-667000"],
        ["refund_rounding:pi_RUN", "token_pack_refund", "-1"],
      ],
    );
    assert.deepEqual(sameSecond, distinct);
  },
});

Deno.test({
  name: "stripe order test teardown",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await server.shutdown();
    await deleteTestUsers(sql, users);
    await sql.end();
  },
});
