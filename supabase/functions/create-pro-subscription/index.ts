// POST /functions/v1/create-pro-subscription  { plan: "pro" | "max", billingPeriod: "monthly" | "yearly" }
// → 200 { url, sessionId }: a Stripe Checkout Session (mode subscription) for the signed-in user; the client
// redirects to url. The webhook applies the subscription when it is paid.
// 400 bad body or Idempotency-Key · 401 not a signed-in user · 409 already on a paid plan (use
// billing-portal) · 415 not JSON · 429 more than 10 a minute · 502/504 Stripe failed · 503 no price configured.
// The same request twice (double click, retry) within 10 minutes, or with the same Idempotency-Key header,
// answers with the same session. Any other body field (e.g. a userId) is ignored: the user is the token's.
import { caller } from "../_shared/auth/caller.ts";
import { assertNoLivePlan, planPriceId } from "../_shared/billing/catalog.ts";
import { createCheckoutSession } from "../_shared/billing/checkout.ts";
import { ensureStripeCustomer } from "../_shared/billing/customer.ts";
import { checkoutIdempotencyKey, clientIdempotencyKey } from "../_shared/billing/idempotency.ts";
import { billingLimit } from "../_shared/billing/limit.ts";
import { checkoutReturnUrls } from "../_shared/billing/return-urls.ts";
import type { Stripe } from "../_shared/billing/stripe.ts";
import { json } from "../_shared/http/respond.ts";
import { readJson, z } from "../_shared/http/validation.ts";
import { withHttp } from "../_shared/http/with-http.ts";

const Body = z.object({
  plan: z.enum(["pro", "max"]),
  billingPeriod: z.enum(["monthly", "yearly"]),
});

Deno.serve(withHttp({ name: "create-pro-subscription", methods: ["POST"] }, async (req, ctx) => {
  const { plan, billingPeriod } = await readJson(req, Body);
  const clientKey = clientIdempotencyKey(req);

  const { user, log, headers } = await caller(req, ctx, { limit: billingLimit("create-pro-subscription") });

  await assertNoLivePlan(user);
  const price = await planPriceId(plan, billingPeriod);
  const customer = await ensureStripeCustomer(user, log);
  const params: Stripe.Checkout.SessionCreateParams = {
    mode: "subscription",
    customer,
    line_items: [{ price, quantity: 1 }],
    client_reference_id: user.id,
    metadata: { user_id: user.id, plan, billing_period: billingPeriod },
    subscription_data: { metadata: { user_id: user.id, plan } },
    ...checkoutReturnUrls(),
  };
  const key = await checkoutIdempotencyKey("subscription", user, clientKey, [plan, billingPeriod], params);
  const session = await createCheckoutSession(params, key, log);

  log.info("checkout session", {
    kind: "subscription",
    plan,
    billing_period: billingPeriod,
    session: session.sessionId,
  });
  return json(session, { headers });
}));
