// The Stripe webhook, as a handler factory so tests can also run it with a config of their own.
// Reads top to bottom: method (405, by withHttp) → source IP allow-list (403) → per-IP rate limit (429) →
// content type (415) → size (413, before reading it all) → signature on the raw body (400) → one SQL call
// that records, applies (exactly once) and audits the event → 200. A failure to apply is a 500, so Stripe
// retries; the third failure is dead-lettered in the database. Every refusal is audited too.
import { db } from "../_shared/db.ts";
import { HttpError, toHttpError } from "../_shared/errors.ts";
import { listEnv, optionalEnv } from "../_shared/env.ts";
import { clientIp, json, type RequestContext, withHttp } from "../_shared/http.ts";
import { limit, rateLimited, type RateLimitRule } from "../_shared/ratelimit.ts";
import { verifyStripeEvent } from "../_shared/stripe.ts";
import { readRawBody, requireJson } from "../_shared/validation.ts";

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
  const setting = (optionalEnv("STRIPE_WEBHOOK_IP_ALLOWLIST") ?? "off").toLowerCase();
  const allowedIps = ["off", "false", "0", "no"].includes(setting)
    ? null
    : ["on", "true", "1", "yes", "stripe"].includes(setting)
    ? STRIPE_WEBHOOK_IPS
    : listEnv("STRIPE_WEBHOOK_IP_ALLOWLIST");
  const perMinute = Number(optionalEnv("STRIPE_WEBHOOK_RATE_LIMIT_PER_MINUTE") ?? 600);
  return { allowedIps, rateLimit: { limit: perMinute > 0 ? perMinute : 600, windowSeconds: 60 } };
}

async function auditRejection(ctx: RequestContext, ip: string | null, error: HttpError) {
  try {
    await db()`select private.log_webhook_rejection(
      p_request_id => ${ctx.requestId}, p_source_ip => ${ip}::inet, p_http_status => ${error.status},
      p_reason => ${error.message})`;
  } catch (e) {
    // The refusal stands either way; the log line keeps the record when the database is down.
    ctx.log.error("webhook rejection not audited", {
      error: e instanceof Error ? e : String(e),
      reason: error.message,
    });
  }
}

export function stripeWebhookHandler(config: WebhookConfig) {
  return withHttp({ name: "stripe-webhook", methods: ["POST"] }, async (req, ctx) => {
    const ip = clientIp(req);
    let raw: string;
    let event;
    try {
      if (config.allowedIps && !(ip && config.allowedIps.includes(ip))) {
        throw new HttpError("forbidden", "Source address not allowed");
      }
      const rate = await limit(`stripe-webhook:${ip ?? "unknown"}`, config.rateLimit);
      if (!rate.allowed) throw rateLimited(rate);
      requireJson(req);
      raw = await readRawBody(req, MAX_BODY_BYTES, "text");
      event = await verifyStripeEvent(raw, req.headers.get("stripe-signature"));
    } catch (e) {
      const error = toHttpError(e);
      if (error.status < 500) await auditRejection(ctx, ip, error);
      throw e;
    }

    const [result] = await db()<{ status: string; error: string | null }[]>`
      select status, error from private.handle_stripe_event(
        p_event => ${raw}::text::jsonb,
        p_request_id => ${ctx.requestId}, p_source_ip => ${ip}::inet)`;
    if (result.status === "failed") {
      ctx.log.error("stripe event failed", { event_id: event.id, type: event.type, error: result.error });
      throw new HttpError(
        "internal_error",
        "The event could not be applied; it is recorded and will be retried",
      );
    }
    ctx.log.info("stripe event", { event_id: event.id, type: event.type, status: result.status });
    return json({ received: true, status: result.status });
  });
}
