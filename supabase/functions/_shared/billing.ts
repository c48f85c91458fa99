// What the billing functions (create-pro-subscription, buy-token-pack, billing-portal) share:
//
//   ensureStripeCustomer  the user's one Stripe customer: read from public.users, else created in Stripe
//                         with idempotency key `customer:<user id>` (two racing first checkouts get the same
//                         customer back from Stripe) and stored only where none is stored yet
//   idempotency           `checkoutIdempotencyKey`: the client's Idempotency-Key header (validated, scoped
//                         by user and kind), else derived from the user, the request and a 10-minute bucket,
//                         so a double click or a retry answers with the same Checkout Session
//   catalog               the Stripe price of a plan (503 if not configured), an active token pack (404),
//                         the 409 for a user who already has a live paid plan
//   callStripe            a Stripe failure as our error shape: 502 upstream_error (504 on a timeout, 409 for
//                         a reused Idempotency-Key); Stripe's own message is logged, never sent to clients
//
// The user's id and email always come from the verified token and public.users (ctx.user), never from a
// request body.
import { authenticate, type AuthUser } from "./auth.ts";
import { db } from "./db.ts";
import { requiredEnv } from "./env.ts";
import { HttpError } from "./errors.ts";
import type { RequestContext } from "./http.ts";
import type { Logger } from "./log.ts";
import { limit, rateLimited, rateLimitHeaders, type RateLimitRule } from "./ratelimit.ts";
import { Stripe, stripe } from "./stripe.ts";

export type BillingUser = Pick<AuthUser, "id" | "email">;
export type PaidPlan = "pro" | "max";
export type BillingPeriod = "monthly" | "yearly";
export type CheckoutKind = "subscription" | "token_pack";

/** Per user and function: Checkout and portal sessions are cheap for us but not for Stripe's rate limits. */
export const BILLING_RATE_LIMIT: RateLimitRule = { limit: 10, windowSeconds: 60 };

/**
 * The signed-in caller of a billing function, within its per-user rate limit: authenticate (401), then
 * count the call against `<function>:<user id>` (429). Returns the user, a logger tagged with them, and the
 * X-RateLimit headers for the answer.
 */
export async function billingCaller(
  req: Request,
  ctx: RequestContext,
  functionName: string,
): Promise<{ user: AuthUser; log: Logger; headers: Record<string, string> }> {
  const user = await authenticate(req, { log: ctx.log });
  const rate = await limit(`${functionName}:${user.id}`, BILLING_RATE_LIMIT);
  if (!rate.allowed) throw rateLimited(rate);
  return { user, log: ctx.log.child({ user_id: user.id }), headers: rateLimitHeaders(rate) };
}

/** How long an identical checkout request without an Idempotency-Key returns the same session. */
export const CHECKOUT_DEDUPE_WINDOW_MS = 10 * 60 * 1000;

const CLIENT_IDEMPOTENCY_KEY = /^[A-Za-z0-9._:-]{8,128}$/;

// ------------------------------------------------------------------------------------------ config

/** APP_URL without a trailing slash: where Checkout and the portal send the user back to. */
export function appUrl(): string {
  return requiredEnv("APP_URL", "Billing").replace(/\/+$/, "");
}

// ------------------------------------------------------------------------------------- idempotency

/**
 * The client's Idempotency-Key header, or null when absent. 400 unless it is 8-128 characters of
 * `A-Z a-z 0-9 . _ : -` (a UUID is a good choice).
 */
export function clientIdempotencyKey(req: Request): string | null {
  const value = req.headers.get("idempotency-key");
  if (value === null) return null;
  if (!CLIENT_IDEMPOTENCY_KEY.test(value)) {
    throw new HttpError(
      "invalid_request",
      "Idempotency-Key header: must be 8-128 characters of letters, digits, '.', '_', ':' or '-'",
    );
  }
  return value;
}

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * The Stripe idempotency key of a checkout. With the client's key: `<kind>:<user>:key:<client key>`, so a
 * client's keys never collide with another user's or another kind's (and the same key with a different
 * body is a 409). Without: `<kind>:<user>:<parts…>:<10-minute bucket>:<hash of the params>`, so the same
 * request within the bucket (a double click, a retry) replays the same session, and a request with other
 * parameters (another plan, a changed price id) is a new one instead of an idempotency error.
 */
export async function checkoutIdempotencyKey(
  kind: CheckoutKind,
  user: BillingUser,
  clientKey: string | null,
  parts: readonly string[],
  params: unknown,
  now = Date.now(),
): Promise<string> {
  if (clientKey) return `${kind}:${user.id}:key:${clientKey}`;
  const bucket = Math.floor(now / CHECKOUT_DEDUPE_WINDOW_MS);
  const hash = (await sha256Hex(JSON.stringify(params))).slice(0, 16);
  return [kind, user.id, ...parts, bucket, hash].join(":");
}

// ------------------------------------------------------------------------------------------ stripe

/** Runs one Stripe call; any Stripe failure becomes our error shape, without Stripe's details. */
export async function callStripe<T>(what: string, log: Logger, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (e) {
    if (!(e instanceof Stripe.errors.StripeError)) throw e;
    log.error("stripe call failed", {
      call: what,
      type: e.type,
      status: e.statusCode,
      code: e.code,
      param: e.param,
      stripe_request_id: e.requestId,
      message: e.message,
    });
    if (e.rawType === "idempotency_error") {
      throw new HttpError(
        "conflict",
        e.statusCode === 409
          ? "The same request is already in progress; retry in a moment"
          : "This Idempotency-Key was already used for a different request",
      );
    }
    if (e instanceof Stripe.errors.StripeConnectionError && /timeout/i.test(e.message)) {
      throw new HttpError("upstream_timeout", "The payment provider did not answer in time; try again");
    }
    throw new HttpError(
      "upstream_error",
      "The payment provider could not process the request; try again later",
    );
  }
}

/**
 * The user's Stripe customer id; creates the customer on first use. Safe under concurrency: racing calls
 * get the same customer from Stripe (same idempotency key), the first to store it wins, and every caller
 * returns what is stored. Never two customers for one user.
 */
export async function ensureStripeCustomer(user: BillingUser, log: Logger): Promise<string> {
  const sql = db();
  const stored = async () => {
    const [row] = await sql<{ stripe_customer_id: string | null }[]>`
      select stripe_customer_id from public.users where id = ${user.id}`;
    if (!row) throw new HttpError("unauthorized", "User not found", { "www-authenticate": "Bearer" });
    return row.stripe_customer_id;
  };

  const existing = await stored();
  if (existing) return existing;

  const customer = await callStripe("customers.create", log, () =>
    stripe().customers.create(
      { ...(user.email && { email: user.email }), metadata: { user_id: user.id } },
      { idempotencyKey: `customer:${user.id}` },
    ));
  await sql`
    update public.users set stripe_customer_id = ${customer.id}
     where id = ${user.id} and stripe_customer_id is null`;
  const linked = await stored();
  if (!linked) throw new Error(`stripe_customer_id of user ${user.id} is still null after linking`);
  if (linked !== customer.id) {
    log.warn("stripe customer already linked; the new one is unused", {
      stored: linked,
      created: customer.id,
    });
  }
  return linked;
}

export type CheckoutSession = { url: string; sessionId: string };

/** Creates a Checkout Session with the given idempotency key; `{ url, sessionId }`. */
export async function createCheckoutSession(
  params: Stripe.Checkout.SessionCreateParams,
  idempotencyKey: string,
  log: Logger,
): Promise<CheckoutSession> {
  const session = await callStripe(
    "checkout.sessions.create",
    log,
    () => stripe().checkout.sessions.create(params, { idempotencyKey }),
  );
  if (!session.url) {
    log.error("checkout session without a url", { session: session.id });
    throw new HttpError(
      "upstream_error",
      "The payment provider could not process the request; try again later",
    );
  }
  return { url: session.url, sessionId: session.id };
}

/** Where Checkout returns to: `{CHECKOUT_SESSION_ID}` is filled in by Stripe. */
export function checkoutReturnUrls(): { success_url: string; cancel_url: string } {
  const base = appUrl();
  return {
    success_url: `${base}/billing/success?session_id={CHECKOUT_SESSION_ID}`,
    cancel_url: `${base}/billing/cancel`,
  };
}

// ----------------------------------------------------------------------------------------- catalog

/**
 * 409 when the user already has a Stripe subscription past its first payment and not ended (live, or unpaid
 * or paused: it could still bill): a second one would bill twice, so changes go through the portal. Where a
 * status lies in a subscription's life is SQL's rule (private._subscription_stage).
 */
export async function assertNoLivePlan(user: BillingUser): Promise<void> {
  const [row] = await db()<{ plan_id: string; status: string }[]>`
    select plan_id, status from public.user_subscriptions
     where user_id = ${user.id} and private._subscription_stage(status) = 1
     order by is_current desc limit 1`;
  if (row) {
    throw new HttpError(
      "conflict",
      `You already have the ${row.plan_id} plan (${row.status}); change or cancel it in the billing portal`,
    );
  }
}

/** The Stripe price id of a plan and period: 404 if the plan is not offered, 503 if no price is set. */
export async function planPriceId(plan: PaidPlan, period: BillingPeriod): Promise<string> {
  const [row] = await db()<{ price_id: string | null }[]>`
    select case when ${period} = 'yearly' then stripe_price_yearly else stripe_price_monthly end as price_id
      from public.subscription_plans
     where id = ${plan} and is_active`;
  if (!row) throw new HttpError("not_found", `The ${plan} plan is not offered`);
  if (!row.price_id) {
    throw new HttpError(
      "service_unavailable",
      `Billing for the ${plan} plan (${period}) is not configured on the server: no Stripe price id`,
    );
  }
  return row.price_id;
}

export type TokenPack = { id: string; name: string; tokens: string; price_cents: number; currency: string };

/** An active token pack, else 404. */
export async function activeTokenPack(packId: string): Promise<TokenPack> {
  const [pack] = await db()<TokenPack[]>`
    select id, name, tokens::text as tokens, price_cents, currency
      from public.token_packs
     where id = ${packId} and is_active`;
  if (!pack) throw new HttpError("not_found", `No token pack '${packId}'`);
  return pack;
}
