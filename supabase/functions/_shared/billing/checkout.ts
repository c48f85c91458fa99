// Creating a Stripe Checkout Session under an idempotency key (idempotency.ts), so a retried request answers with
// the same session; `{ url, sessionId }` for the client to redirect to.
import type { Logger } from "../platform/log.ts";
import { callStripe, paymentProviderFailed, Stripe, stripe } from "./stripe.ts";

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
    throw paymentProviderFailed();
  }
  return { url: session.url, sessionId: session.id };
}
