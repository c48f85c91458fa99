// POST /functions/v1/buy-token-pack  { packId: string }
// → 200 { url, sessionId }: a Stripe Checkout Session (mode payment) for one active token pack; the client
// redirects to url. The webhook credits the tokens once paid, from checkout.session.completed or
// payment_intent.succeeded (both carry metadata { user_id, pack_id, tokens }).
// 400 bad body or Idempotency-Key · 401 not a signed-in user · 404 no such active pack · 415 not JSON ·
// 429 more than 10 a minute · 502/504 Stripe failed. Same request twice within 10 minutes, or the same
// Idempotency-Key header → the same session.
import { caller } from "../_shared/auth/caller.ts";
import { activeTokenPack } from "../_shared/billing/catalog.ts";
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
  packId: z.string().regex(/^[a-z][a-z0-9_]{0,63}$/, "must be a token pack id such as pack_1m"),
});

Deno.serve(withHttp({ name: "buy-token-pack", methods: ["POST"] }, async (req, ctx) => {
  const { packId } = await readJson(req, Body);
  const clientKey = clientIdempotencyKey(req);

  const { user, log, headers } = await caller(req, ctx, { limit: billingLimit("buy-token-pack") });

  const pack = await activeTokenPack(packId);
  const customer = await ensureStripeCustomer(user, log);
  const metadata = { user_id: user.id, pack_id: pack.id, tokens: pack.tokens };
  const params: Stripe.Checkout.SessionCreateParams = {
    mode: "payment",
    customer,
    line_items: [{
      price_data: {
        currency: pack.currency,
        unit_amount: pack.price_cents,
        product_data: { name: pack.name },
      },
      quantity: 1,
    }],
    client_reference_id: user.id,
    metadata,
    payment_intent_data: { metadata },
    ...checkoutReturnUrls(),
  };
  const key = await checkoutIdempotencyKey("token_pack", user, clientKey, [pack.id], params);
  const session = await createCheckoutSession(params, key, log);

  log.info("checkout session", { kind: "token_pack", pack_id: pack.id, session: session.sessionId });
  return json(session, { headers });
}));
