// POST /functions/v1/billing-portal (no body) → 200 { url }: a Stripe billing portal session for the
// signed-in user (change or cancel the plan, payment methods, invoices); it returns to APP_URL/billing.
// Creates the user's Stripe customer if they have none yet.
// 401 not a signed-in user · 429 more than 10 a minute · 502/504 Stripe failed.
import { appUrl, billingCaller, callStripe, ensureStripeCustomer } from "../_shared/billing.ts";
import { json, withHttp } from "../_shared/http.ts";
import { stripe } from "../_shared/stripe.ts";

Deno.serve(withHttp({ name: "billing-portal", methods: ["POST"] }, async (req, ctx) => {
  await req.body?.cancel(); // nothing to read: the user is the token's

  const { user, log, headers } = await billingCaller(req, ctx, "billing-portal");

  const customer = await ensureStripeCustomer(user, log);
  const session = await callStripe(
    "billingPortal.sessions.create",
    log,
    () => stripe().billingPortal.sessions.create({ customer, return_url: `${appUrl()}/billing` }),
  );

  log.info("billing portal session", { session: session.id });
  return json({ url: session.url }, { headers });
}));
