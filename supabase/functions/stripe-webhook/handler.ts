// The Stripe webhook, as a handler factory so tests can also run it with a config of their own.
// Reads top to bottom: method (405, by withHttp) → source IP allow-list (403) → per-IP rate limit (429) →
// content type (415) → size (413, before reading it all) → signature on the raw body (400) → an invoice's
// cut-off lines read from the API → one SQL call that refuses a body it cannot record (400), else records,
// applies (exactly once) and audits the event → 200. A failure to apply is a 500, so Stripe retries; the
// third failure is dead-lettered in the database. Every refusal is audited, once.
import { type StripeEvent, verifyStripeEvent } from "../_shared/billing/stripe-signature.ts";
import { callStripe, Stripe, stripe } from "../_shared/billing/stripe.ts";
import type { Database } from "../_shared/database.types.ts";
import { clientIp } from "../_shared/http/client-ip.ts";
import { HttpError } from "../_shared/http/errors.ts";
import { errorResponse, json } from "../_shared/http/respond.ts";
import { readRawBody, requireJson } from "../_shared/http/validation.ts";
import { type RequestContext, withHttp } from "../_shared/http/with-http.ts";
import { limit, rateLimited, type RateLimitRule } from "../_shared/limits/ratelimit.ts";
import { db } from "../_shared/platform/db.ts";
import { env, parseBoolean } from "../_shared/platform/env.ts";
import type { Logger } from "../_shared/platform/log.ts";

/** Stripe's published webhook source addresses (https://stripe.com/files/ips/ips_webhooks.txt). */
export const STRIPE_WEBHOOK_IPS: readonly string[] = [
  "3.18.12.63",
  "3.69.109.8",
  "3.120.168.93",
  "3.130.192.231",
  "13.235.14.237",
  "13.235.122.149",
  "18.211.135.69",
  "35.154.171.200",
  "35.157.207.129",
  "52.15.183.38",
  "54.88.130.119",
  "54.88.130.237",
  "54.187.174.169",
  "54.187.205.235",
  "54.187.216.72",
];

export const MAX_BODY_BYTES = 1024 * 1024;

export type WebhookConfig = {
  /** null: no IP check; otherwise the addresses deliveries must come from. */
  allowedIps: readonly string[] | null;
  rateLimit: RateLimitRule;
};

/**
 * STRIPE_WEBHOOK_IP_ALLOWLIST: unset/"off" (default) → no check; "on"/"stripe" → Stripe's list; otherwise a
 * comma-separated list of addresses. STRIPE_WEBHOOK_RATE_LIMIT_PER_MINUTE (default 600) per source IP.
 */
export function webhookConfigFromEnv(): WebhookConfig {
  const setting = env.string("STRIPE_WEBHOOK_IP_ALLOWLIST") ?? "off";
  const stripeOnly = setting.toLowerCase() === "stripe" ? true : parseBoolean(setting);
  const allowedIps = stripeOnly === false
    ? null
    : stripeOnly === true
    ? STRIPE_WEBHOOK_IPS
    : env.list("STRIPE_WEBHOOK_IP_ALLOWLIST");
  const perMinute = env.integer("STRIPE_WEBHOOK_RATE_LIMIT_PER_MINUTE", { min: 1, default: 600 });
  return { allowedIps, rateLimit: { limit: perMinute, windowSeconds: 60 } };
}

/** Audits a delivery refused before it reached the database (method, source, limit, type, size, signature). */
async function auditRefusal({ req, ctx, error }: { req: Request; ctx: RequestContext; error: HttpError }) {
  try {
    await db()`select private.log_webhook_rejection(
      p_request_id => ${ctx.requestId}, p_source_ip => ${
      clientIp(req)
    }::inet, p_http_status => ${error.status},
      p_reason => ${error.message})`;
  } catch (e) {
    // The refusal stands either way; the log line keeps the record when the database is down.
    ctx.log.error("webhook rejection not audited", {
      error: e instanceof Error ? e : String(e),
      reason: error.message,
    });
  }
}

/** Invoice events whose effect reads every line of the invoice (the subscription period line decides). */
const WHOLE_INVOICE_EVENTS = new Set(["invoice.paid", "invoice.payment_succeeded"]);

/**
 * The body to record: the raw one, unless it is an invoice event whose lines Stripe cut off (`has_more`):
 * then the event with all of the invoice's lines, read from Stripe's API, so the invoice is read whole.
 */
async function wholeEvent(raw: string, event: StripeEvent, log: Logger): Promise<string> {
  const invoice = event.data.object as Partial<Stripe.Invoice>;
  if (!WHOLE_INVOICE_EVENTS.has(event.type) || !invoice.lines?.has_more || !invoice.id) return raw;
  const id = invoice.id;
  const lines = await callStripe(
    "invoices.listLineItems",
    log,
    () => stripe().invoices.listLineItems(id, { limit: 100 }).autoPagingToArray({ limit: 10_000 }),
  );
  log.info("invoice lines completed from the API", { invoice: id, lines: lines.length });
  return JSON.stringify({
    ...event,
    data: {
      ...event.data,
      object: { ...invoice, lines: { ...invoice.lines, data: lines, has_more: false } },
    },
  });
}

type HandleStripeEventRow = Database["private"]["Functions"]["handle_stripe_event"]["Returns"][number];
/** What handle_stripe_event answers; `error` and `reason` may be null (the generated type says never). */
type HandledEvent =
  & Pick<HandleStripeEventRow, "status">
  & { [K in "error" | "reason"]: HandleStripeEventRow[K] | null };

export function stripeWebhookHandler(config: WebhookConfig) {
  return withHttp(
    { name: "stripe-webhook", methods: ["POST"], onRefused: auditRefusal },
    async (req, ctx) => {
      const ip = clientIp(req);
      if (config.allowedIps && !(ip && config.allowedIps.includes(ip))) {
        throw new HttpError("forbidden", "Source address not allowed");
      }
      const rate = await limit(`stripe-webhook:${ip ?? "unknown"}`, config.rateLimit);
      if (!rate.allowed) throw rateLimited(rate);
      requireJson(req);
      const raw = await readRawBody(req, MAX_BODY_BYTES, "text");
      const event = await verifyStripeEvent(raw, req.headers.get("stripe-signature"));
      const body = await wholeEvent(raw, event, ctx.log);

      // One SQL call: refuses what is not a storable Stripe event (audited there), else records, applies
      // (exactly once) and audits it.
      const [result] = await db()<HandledEvent[]>`
      select status, error, reason from private.handle_stripe_event(
        p_payload => ${body}, p_request_id => ${ctx.requestId}, p_source_ip => ${ip}::inet)`;
      if (result.status === "rejected") {
        return errorResponse(
          new HttpError("invalid_request", `Not a Stripe event we can record: ${result.error}`),
        );
      }
      if (result.status === "failed") {
        ctx.log.error("stripe event failed", { event_id: event.id, type: event.type, error: result.error });
        throw new HttpError(
          "internal_error",
          "The event could not be applied; it is recorded and will be retried",
        );
      }
      ctx.log.info("stripe event", {
        event_id: event.id,
        type: event.type,
        status: result.status,
        ...(result.reason && { reason: result.reason }),
      });
      return json({ received: true, status: result.status });
    },
  );
}
