// Where a Stripe webhook delivery is verified: the Stripe-Signature header against the raw body, with the SDK's
// async verifier (Web Crypto) and STRIPE_WEBHOOK_SECRET, within Stripe's default tolerance of five minutes.
import { HttpError } from "../http/errors.ts";
import { env } from "../platform/env.ts";
import { Stripe } from "./stripe.ts";

export type StripeEvent = Stripe.Event;

/** Stripe's default tolerance for the signature timestamp: five minutes. */
export const SIGNATURE_TOLERANCE_SECONDS = 300;

const cryptoProvider = Stripe.createSubtleCryptoProvider();

/**
 * Verifies the Stripe-Signature header against the raw body and returns the parsed event.
 * 400 for a missing or bad signature, a timestamp outside the tolerance, or a body that is not JSON.
 */
export async function verifyStripeEvent(rawBody: string, signature: string | null): Promise<StripeEvent> {
  const secret = env.required("STRIPE_WEBHOOK_SECRET", "The Stripe webhook");
  if (!signature) throw new HttpError("invalid_request", "Missing Stripe-Signature header");
  let event: StripeEvent;
  try {
    event = await Stripe.webhooks.constructEventAsync(
      rawBody,
      signature,
      secret,
      SIGNATURE_TOLERANCE_SECONDS,
      cryptoProvider,
    );
  } catch (e) {
    if (e instanceof SyntaxError) throw new HttpError("invalid_request", "Body is not valid JSON");
    throw new HttpError("invalid_request", "Invalid Stripe signature");
  }
  if (!event || typeof event.id !== "string" || typeof event.type !== "string") {
    throw new HttpError("invalid_request", "Body is not a Stripe event");
  }
  return event;
}
