// Stripe events as Stripe sends them (API version 2026-10-28), signed with the test webhook secret by the
// stripe SDK's own test-header helper, and delivered to the webhook over HTTP.
import Stripe from "npm:stripe@23.1.0";
import { stack } from "./stack.ts";

/** The secret in supabase/functions/tests/.env.test. */
export const WEBHOOK_SECRET = "whsec_test_local_webhook_secret";
export const webhookUrl = () => `${stack.functionsUrl}/stripe-webhook`;

const sdk = new Stripe("sk_test_unused", { httpClient: Stripe.createFetchHttpClient() });
const cryptoProvider = Stripe.createSubtleCryptoProvider();

export type StripeEventJson = {
  id: string;
  object: "event";
  type: string;
  created: number;
  livemode: boolean;
  api_version: string;
  data: { object: Record<string, unknown> };
};

const rid = (prefix: string) => `${prefix}_${crypto.randomUUID().replace(/-/g, "").slice(0, 24)}`;
export const ids = {
  event: () => rid("evt"),
  customer: () => rid("cus"),
  subscription: () => rid("sub"),
  invoice: () => rid("in"),
  paymentIntent: () => rid("pi"),
  charge: () => rid("ch"),
  session: () => rid("cs_test"),
};

export function event(
  type: string,
  object: Record<string, unknown>,
  created = Math.floor(Date.now() / 1000),
) {
  return {
    id: ids.event(),
    object: "event",
    type,
    created,
    livemode: false,
    api_version: "2026-10-28.endive",
    data: { object },
  } satisfies StripeEventJson;
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
  opts: { secret?: string; timestamp?: number; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const payload = JSON.stringify(evt);
  const res = await fetch(webhookUrl(), {
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

// --- object builders (only the fields our webhook reads, in Stripe's shapes) ---

export function checkoutPayment(
  o: { customer: string; userId: string; packId: string; tokens: number; pi?: string },
) {
  return {
    id: ids.session(),
    object: "checkout.session",
    mode: "payment",
    payment_status: "paid",
    status: "complete",
    customer: o.customer,
    client_reference_id: o.userId,
    payment_intent: o.pi ?? ids.paymentIntent(),
    amount_total: 1000,
    currency: "usd",
    metadata: { user_id: o.userId, pack_id: o.packId, tokens: String(o.tokens) },
  };
}

export function checkoutSubscription(
  o: { customer: string; userId: string; plan: string; period: string; sub?: string },
) {
  return {
    id: ids.session(),
    object: "checkout.session",
    mode: "subscription",
    payment_status: "paid",
    status: "complete",
    customer: o.customer,
    client_reference_id: o.userId,
    subscription: o.sub ?? ids.subscription(),
    metadata: { user_id: o.userId, plan: o.plan, billing_period: o.period },
  };
}

export function subscription(
  o: {
    id: string;
    customer: string;
    price: string;
    status?: string;
    cancelAtPeriodEnd?: boolean;
    start?: number;
  },
) {
  const start = o.start ?? Math.floor(Date.now() / 1000);
  return {
    id: o.id,
    object: "subscription",
    customer: o.customer,
    status: o.status ?? "active",
    cancel_at_period_end: o.cancelAtPeriodEnd ?? false,
    canceled_at: null,
    ended_at: null,
    metadata: {},
    items: {
      object: "list",
      data: [{
        id: `si_${o.id.slice(4)}`,
        object: "subscription_item",
        price: { id: o.price, object: "price" },
        current_period_start: start,
        current_period_end: start + 30 * 86400,
      }],
    },
  };
}

export function invoice(o: { id?: string; customer: string; sub: string; price: string; start?: number }) {
  const start = o.start ?? Math.floor(Date.now() / 1000);
  return {
    id: o.id ?? ids.invoice(),
    object: "invoice",
    customer: o.customer,
    status: "paid",
    billing_reason: "subscription_cycle",
    hosted_invoice_url: "https://invoice.stripe.com/i/test",
    parent: { type: "subscription_details", subscription_details: { subscription: o.sub, metadata: {} } },
    lines: {
      object: "list",
      data: [{
        id: "il_test",
        object: "line_item",
        period: { start, end: start + 30 * 86400 },
        pricing: { type: "price_details", price_details: { price: o.price, product: "prod_test" } },
      }],
    },
  };
}

export function charge(o: { id?: string; pi: string; customer: string; amount: number; refunded: number }) {
  return {
    id: o.id ?? ids.charge(),
    object: "charge",
    customer: o.customer,
    payment_intent: o.pi,
    amount: o.amount,
    amount_refunded: o.refunded,
    refunded: o.refunded >= o.amount,
  };
}
