// The Stripe SDK, configured from env: STRIPE_SECRET_KEY, and STRIPE_API_BASE to send its calls somewhere other
// than api.stripe.com (the fake Stripe API in tests, a proxy); and `callStripe`, which turns any Stripe failure
// into our error shape: 502 upstream_error (504 on a timeout, 409 for a reused Idempotency-Key). Stripe's own
// message is logged, never sent to clients.
import Stripe from "npm:stripe@23.1.0";
import { HttpError } from "../http/errors.ts";
import { env } from "../platform/env.ts";
import type { Logger } from "../platform/log.ts";

export { Stripe };

let client: Stripe | undefined;

export function stripe(): Stripe {
  if (client) return client;
  const key = env.required("STRIPE_SECRET_KEY", "Billing");
  const base = env.string("STRIPE_API_BASE");
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

/** The answer when the payment provider failed us in a way the client cannot act on. */
export const paymentProviderFailed = () =>
  new HttpError("upstream_error", "The payment provider could not process the request; try again later");

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
    throw paymentProviderFailed();
  }
}
