// POST /functions/v1/billing-portal (no body) → 200 { url }: a Stripe billing portal session for the
// signed-in user (change or cancel the plan, payment methods, invoices); it returns to APP_URL/billing.
// Creates the user's Stripe customer if they have none yet.
// 401 not a signed-in user · 429 more than 10 a minute · 502/504 Stripe failed.
import { caller } from "../_shared/auth/caller.ts";
import { ensureStripeCustomer } from "../_shared/billing/customer.ts";
import { billingLimit } from "../_shared/billing/limit.ts";
import { portalReturnUrl } from "../_shared/billing/return-urls.ts";
import { callStripe, stripe } from "../_shared/billing/stripe.ts";
import { json } from "../_shared/http/respond.ts";
import { withHttp } from "../_shared/http/with-http.ts";

Deno.serve(withHttp({ name: "billing-portal", methods: ["POST"] }, async (req, ctx) => {
  await req.body?.cancel(); // nothing to read: the user is the token's

  const { user, log, headers } = await caller(req, ctx, { limit: billingLimit("billing-portal") });

  const customer = await ensureStripeCustomer(user, log);
  const session = await callStripe(
    "billingPortal.sessions.create",
    log,
    () => stripe().billingPortal.sessions.create({ customer, return_url: portalReturnUrl() }),
  );

  log.info("billing portal session", { session: session.id });
  return json({ url: session.url }, { headers });
}));
