// The Stripe SDK, configured from env: STRIPE_SECRET_KEY, and STRIPE_API_BASE to send its calls
// somewhere other than api.stripe.com (the fake Stripe API in tests, a proxy). Webhook signatures are
// verified here, on the raw body, with the SDK's async verifier.
import Stripe from "npm:stripe@23.1.0";
import { HttpError } from "./errors.ts";
import { optionalEnv, requiredEnv } from "./env.ts";

export { Stripe };
export type StripeEvent = Stripe.Event;

/** Stripe's default tolerance for the signature timestamp: five minutes. */
export const SIGNATURE_TOLERANCE_SECONDS = 300;

let client: Stripe | undefined;

export function stripe(): Stripe {
  if (client) return client;
  const key = requiredEnv("STRIPE_SECRET_KEY", "Billing");
  const base = optionalEnv("STRIPE_API_BASE");
  const target = base ? new URL(base) : undefined;
  client = new Stripe(key, {
    httpClient: Stripe.createFetchHttpClient(),
    maxNetworkRetries: 2,
    timeout: 15_000,
    telemetry: false,
    ...(target && {
      host: target.hostname,
      port: Number(target.port || (target.protocol === "https:" ? 443 : 80)),
      protocol: target.protocol === "http:" ? "http" : "https",
    }),
  });
  return client;
}

const cryptoProvider = Stripe.createSubtleCryptoProvider();

/**
 * Verifies the Stripe-Signature header against the raw body and returns the parsed event.
 * 400 for a missing or bad signature, a timestamp outside the tolerance, or a body that is not JSON.
 */
export async function verifyStripeEvent(rawBody: string, signature: string | null): Promise<StripeEvent> {
  const secret = requiredEnv("STRIPE_WEBHOOK_SECRET", "The Stripe webhook");
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
