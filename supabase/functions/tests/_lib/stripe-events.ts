// Stripe events as Stripe sends them (API version 2026-10-28), signed with the test webhook secret by the
// stripe SDK's own test-header helper, and delivered to the webhook over HTTP.
//
// The object builders follow the example objects of Stripe's OpenAPI fixtures and are typed against
// stripe-node's own API types (`satisfies Shape<Stripe.Invoice>`…): every field they set exists in the
// current API under that name and nesting (an invoice has no top-level `subscription` any more, a
// subscription's period is on its items, a line item's price is under pricing.price_details), so a builder
// can never drift into a shape Stripe does not send.
import Stripe from "npm:stripe@23.1.0";
import { stack } from "./stack.ts";

/** The secret in supabase/functions/tests/.env.test. */
export const WEBHOOK_SECRET = "whsec_test_local_webhook_secret";
export const webhookUrl = () => `${stack.functionsUrl}/stripe-webhook`;
export const API_VERSION = "2026-10-28.endive";

const sdk = new Stripe("sk_test_unused", { httpClient: Stripe.createFetchHttpClient() });
const cryptoProvider = Stripe.createSubtleCryptoProvider();

/** A Stripe object with any subset of its fields, each of Stripe's type (arrays and nested objects too). */
export type Shape<T> = T extends readonly (infer U)[] ? Shape<U>[]
  : T extends object ? { [K in keyof T]?: Shape<T[K]> | null }
  : T;

export type StripeEventJson = {
  id: string;
  object: "event";
  type: string;
  created: number;
  livemode: boolean;
  api_version: string;
  pending_webhooks: number;
  request: { id: string | null; idempotency_key: string | null };
  data: { object: Record<string, unknown>; previous_attributes?: Record<string, unknown> };
};

const ALPHANUMERIC = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
/** A Stripe-style id: the prefix and 24 random alphanumerics (`cus_…`, `in_…`). */
export const rid = (prefix: string) =>
  `${prefix}_${
    Array.from(crypto.getRandomValues(new Uint8Array(24)), (b) => ALPHANUMERIC[b % ALPHANUMERIC.length]).join(
      "",
    )
  }`;
export const ids = {
  event: () => rid("evt"),
  customer: () => rid("cus"),
  subscription: () => rid("sub"),
  subscriptionItem: () => rid("si"),
  invoice: () => rid("in"),
  invoiceLine: () => rid("il"),
  paymentIntent: () => rid("pi"),
  charge: () => rid("ch"),
  refund: () => rid("re"),
  dispute: () => rid("dp"),
  session: () => rid("cs_test"),
};

const nowSeconds = () => Math.floor(Date.now() / 1000);

export function event(
  type: string,
  object: Record<string, unknown>,
  created = nowSeconds(),
  opts: { id?: string; previousAttributes?: Record<string, unknown> } = {},
): StripeEventJson {
  return {
    id: opts.id ?? ids.event(),
    object: "event",
    type,
    created,
    livemode: false,
    api_version: API_VERSION,
    pending_webhooks: 1,
    request: { id: null, idempotency_key: null },
    data: { object, ...(opts.previousAttributes && { previous_attributes: opts.previousAttributes }) },
  };
}

export async function signature(payload: string, opts: { secret?: string; timestamp?: number } = {}) {
  return await sdk.webhooks.generateTestHeaderStringAsync({
    payload,
    secret: opts.secret ?? WEBHOOK_SECRET,
    timestamp: opts.timestamp,
    cryptoProvider,
  });
}

/** Delivers an event like Stripe does: POST, JSON, Stripe-Signature over the exact bytes sent. */
export async function deliver(
  evt: StripeEventJson,
  opts: { secret?: string; timestamp?: number; headers?: Record<string, string>; url?: string } = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const payload = JSON.stringify(evt);
  const res = await fetch(opts.url ?? webhookUrl(), {
    method: "POST",
    headers: {
      "content-type": "application/json; charset=utf-8",
      "stripe-signature": await signature(payload, opts),
      ...opts.headers,
    },
    body: payload,
  });
  return { status: res.status, body: await res.json() };
}

// --------------------------------------------------------------------------------- object builders

const DAY = 86400;

function price(id: string, interval: "month" | "year" = "month") {
  return {
    id,
    object: "price",
    active: true,
    billing_scheme: "per_unit",
    created: 1721948530,
    currency: "usd",
    livemode: false,
    lookup_key: null,
    metadata: {},
    nickname: null,
    product: "prod_QXg1hqf4jFNsqG",
    recurring: { interval, interval_count: 1, meter: null, usage_type: "licensed", trial_period_days: null },
    tax_behavior: "unspecified",
    tiers_mode: null,
    transform_quantity: null,
    type: "recurring",
    unit_amount: 2900,
    unit_amount_decimal: "2900",
  } satisfies Shape<Stripe.Price>;
}

export function checkoutPayment(
  o: {
    customer: string;
    userId: string;
    packId: string;
    tokens: number;
    pi?: string;
    amount?: number;
    created?: number;
    paymentStatus?: "paid" | "unpaid";
  },
) {
  const id = ids.session();
  return {
    id,
    object: "checkout.session",
    amount_subtotal: o.amount ?? 1000,
    amount_total: o.amount ?? 1000,
    cancel_url: "http://localhost:3000/billing/cancel",
    client_reference_id: o.userId,
    created: o.created ?? nowSeconds(),
    currency: "usd",
    customer: o.customer,
    customer_details: {
      email: "buyer@example.com",
      name: null,
      phone: null,
      tax_exempt: "none",
      tax_ids: [],
    },
    expires_at: (o.created ?? nowSeconds()) + DAY,
    invoice: null,
    livemode: false,
    metadata: { user_id: o.userId, pack_id: o.packId, tokens: String(o.tokens) },
    mode: "payment",
    payment_intent: o.pi ?? ids.paymentIntent(),
    payment_method_types: ["card"],
    payment_status: o.paymentStatus ?? "paid",
    status: "complete",
    subscription: null,
    success_url: "http://localhost:3000/billing/success?session_id={CHECKOUT_SESSION_ID}",
    url: null,
  } satisfies Shape<Stripe.Checkout.Session>;
}

export function paymentIntent(
  o: {
    id: string;
    customer: string;
    userId: string;
    packId: string;
    tokens: number;
    amount?: number;
    created?: number;
  },
) {
  return {
    id: o.id,
    object: "payment_intent",
    amount: o.amount ?? 1000,
    amount_capturable: 0,
    amount_received: o.amount ?? 1000,
    capture_method: "automatic_async",
    client_secret: `${o.id}_secret_test`,
    confirmation_method: "automatic",
    created: o.created ?? nowSeconds(),
    currency: "usd",
    customer: o.customer,
    latest_charge: null,
    livemode: false,
    metadata: { user_id: o.userId, pack_id: o.packId, tokens: String(o.tokens) },
    payment_method_types: ["card"],
    status: "succeeded",
  } satisfies Shape<Stripe.PaymentIntent>;
}

export function checkoutSubscription(
  o: { customer: string; userId: string; plan: string; period: string; sub?: string; created?: number },
) {
  return {
    id: ids.session(),
    object: "checkout.session",
    amount_subtotal: 2900,
    amount_total: 2900,
    client_reference_id: o.userId,
    created: o.created ?? nowSeconds(),
    currency: "usd",
    customer: o.customer,
    invoice: ids.invoice(),
    livemode: false,
    metadata: { user_id: o.userId, plan: o.plan, billing_period: o.period },
    mode: "subscription",
    payment_intent: null,
    payment_status: "paid",
    status: "complete",
    subscription: o.sub ?? ids.subscription(),
  } satisfies Shape<Stripe.Checkout.Session>;
}

export function subscription(
  o: {
    id: string;
    customer: string;
    price: string;
    status?: Stripe.Subscription.Status;
    cancelAtPeriodEnd?: boolean;
    /** The current period's start (its end is 30 days later). */
    start?: number;
    /** When the subscription was created. */
    created?: number;
    item?: string;
    userId?: string;
    canceledAt?: number | null;
    endedAt?: number | null;
    interval?: "month" | "year";
  },
) {
  const start = o.start ?? nowSeconds();
  const end = start + (o.interval === "year" ? 365 : 30) * DAY;
  return {
    id: o.id,
    object: "subscription",
    application: null,
    billing_cycle_anchor: start,
    cancel_at: o.cancelAtPeriodEnd ? end : null,
    cancel_at_period_end: o.cancelAtPeriodEnd ?? false,
    canceled_at: o.canceledAt ?? null,
    cancellation_details: {
      comment: null,
      feedback: null,
      reason: o.canceledAt ? "cancellation_requested" : null,
    },
    collection_method: "charge_automatically",
    created: o.created ?? start,
    currency: "usd",
    customer: o.customer,
    days_until_due: null,
    default_payment_method: null,
    description: null,
    discounts: [],
    ended_at: o.endedAt ?? null,
    items: {
      object: "list",
      data: [{
        id: o.item ?? `si_${o.id.slice(4)}`,
        object: "subscription_item",
        created: o.created ?? start,
        current_period_end: end,
        current_period_start: start,
        discounts: [],
        metadata: {},
        price: price(o.price, o.interval),
        quantity: 1,
        subscription: o.id,
        tax_rates: [],
      }],
      has_more: false,
      url: `/v1/subscription_items?subscription=${o.id}`,
    },
    latest_invoice: null,
    livemode: false,
    metadata: o.userId ? { user_id: o.userId } : {},
    pending_update: null,
    schedule: null,
    start_date: o.created ?? start,
    status: o.status ?? "active",
    test_clock: null,
    trial_end: null,
    trial_start: null,
  } satisfies Shape<Stripe.Subscription>;
}

/** A line item of an invoice. `kind`: a subscription period, a proration, or a one-off invoice item. */
export function invoiceLine(
  o: {
    invoice: string;
    price: string;
    start: number;
    end: number;
    amount: number;
    kind: "period" | "proration" | "invoice_item";
    sub?: string | null;
    item?: string;
    description?: string;
  },
) {
  const subscriptionItem = o.kind !== "invoice_item";
  return {
    id: ids.invoiceLine(),
    object: "line_item",
    amount: o.amount,
    currency: "usd",
    description: o.description ??
      (o.kind === "proration"
        ? (o.amount < 0 ? "Unused time on plan" : "Remaining time on plan")
        : "1 × Plan"),
    discount_amounts: [],
    discountable: o.kind === "period",
    discounts: [],
    invoice: o.invoice,
    livemode: false,
    metadata: {},
    parent: subscriptionItem
      ? {
        type: "subscription_item_details",
        invoice_item_details: null,
        subscription_item_details: {
          invoice_item: o.kind === "proration" ? rid("ii") : null,
          proration: o.kind === "proration",
          proration_details: o.kind === "proration" ? { credited_items: null } : null,
          subscription: o.sub ?? null,
          subscription_item: o.item ?? rid("si"),
        },
      }
      : {
        type: "invoice_item_details",
        subscription_item_details: null,
        invoice_item_details: {
          invoice_item: rid("ii"),
          proration: false,
          proration_details: null,
          subscription: o.sub ?? null,
        },
      },
    period: { start: o.start, end: o.end },
    pretax_credit_amounts: [],
    pricing: { type: "price_details", price_details: { price: o.price, product: "prod_QXg1hqf4jFNsqG" } },
    quantity: 1,
    subtotal: o.amount,
    taxes: [],
  } satisfies Shape<Stripe.InvoiceLineItem>;
}

export type InvoiceLine = ReturnType<typeof invoiceLine>;

export function invoice(
  o: {
    id?: string;
    customer: string;
    sub: string;
    price?: string;
    start?: number;
    userId?: string;
    billingReason?: Stripe.Invoice.BillingReason;
    status?: Stripe.Invoice.Status;
    /** The lines (default: one period line of `price` from `start`). */
    lines?: (invoiceId: string) => InvoiceLine[];
    /** Only the first `firstPage` lines are in the payload, with has_more (as Stripe cuts long invoices). */
    firstPage?: number;
    created?: number;
  },
) {
  const id = o.id ?? ids.invoice();
  const start = o.start ?? nowSeconds();
  const lines = o.lines ? o.lines(id) : [invoiceLine({
    invoice: id,
    price: o.price ?? "price_missing",
    start,
    end: start + 30 * DAY,
    amount: 2900,
    kind: "period",
    sub: o.sub,
  })];
  const shown = o.firstPage === undefined ? lines : lines.slice(0, o.firstPage);
  const total = lines.reduce((sum, l) => sum + l.amount, 0);
  const paid = (o.status ?? "paid") === "paid";
  return {
    id,
    object: "invoice",
    account_country: "US",
    amount_due: total,
    amount_paid: paid ? total : 0,
    amount_remaining: paid ? 0 : total,
    attempt_count: 1,
    attempted: true,
    auto_advance: false,
    billing_reason: o.billingReason ?? "subscription_cycle",
    collection_method: "charge_automatically",
    created: o.created ?? start,
    currency: "usd",
    customer: o.customer,
    customer_email: "buyer@example.com",
    hosted_invoice_url: `https://invoice.stripe.com/i/acct_test/${id}`,
    invoice_pdf: `https://pay.stripe.com/invoice/acct_test/${id}/pdf`,
    lines: {
      object: "list",
      data: shown,
      has_more: shown.length < lines.length,
      url: `/v1/invoices/${id}/lines`,
    },
    livemode: false,
    metadata: {},
    number: `TEST-${id.slice(-6)}`,
    parent: {
      type: "subscription_details",
      quote_details: null,
      subscription_details: { subscription: o.sub, metadata: o.userId ? { user_id: o.userId } : {} },
    },
    period_end: start,
    period_start: start - 30 * DAY,
    status: o.status ?? "paid",
    subtotal: total,
    total,
  } satisfies Shape<Stripe.Invoice>;
}

export function charge(
  o: { id?: string; pi: string; customer: string; amount: number; refunded: number; created?: number },
) {
  return {
    id: o.id ?? ids.charge(),
    object: "charge",
    amount: o.amount,
    amount_captured: o.amount,
    amount_refunded: o.refunded,
    balance_transaction: rid("txn"),
    captured: true,
    created: o.created ?? nowSeconds(),
    currency: "usd",
    customer: o.customer,
    disputed: false,
    livemode: false,
    metadata: {},
    paid: true,
    payment_intent: o.pi,
    payment_method: rid("pm"),
    refunded: o.refunded >= o.amount,
    status: "succeeded",
    // Since API version 2022-11-15 the refunds list is only there when expanded.
  } satisfies Shape<Stripe.Charge>;
}

export function refund(
  o: {
    id?: string;
    charge: string;
    pi: string;
    amount: number;
    status?: "pending" | "requires_action" | "succeeded" | "failed" | "canceled";
    created?: number;
    customer?: string;
  },
) {
  return {
    id: o.id ?? ids.refund(),
    object: "refund",
    amount: o.amount,
    balance_transaction: rid("txn"),
    charge: o.charge,
    created: o.created ?? nowSeconds(),
    currency: "usd",
    customer: o.customer ?? null,
    destination_details: { type: "card", card: { type: "refund", reference_status: "pending" } },
    metadata: {},
    payment_intent: o.pi,
    reason: "requested_by_customer",
    receipt_number: null,
    source_transfer_reversal: null,
    status: o.status ?? "succeeded",
    transfer_reversal: null,
  } satisfies Shape<Stripe.Refund>;
}

export function dispute(
  o: {
    id?: string;
    charge: string;
    pi: string;
    amount: number;
    status: Stripe.Dispute.Status;
    created?: number;
  },
) {
  return {
    id: o.id ?? ids.dispute(),
    object: "dispute",
    amount: o.amount,
    balance_transactions: [],
    charge: o.charge,
    created: o.created ?? nowSeconds(),
    currency: "usd",
    evidence_details: { due_by: (o.created ?? nowSeconds()) + 7 * DAY, has_evidence: false, past_due: false },
    is_charge_refundable: false,
    livemode: false,
    metadata: {},
    payment_intent: o.pi,
    reason: "fraudulent",
    status: o.status,
  } satisfies Shape<Stripe.Dispute>;
}
