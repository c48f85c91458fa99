// Where Stripe sends the user back to: APP_URL (the front end), its /billing pages.
import { env } from "../platform/env.ts";

/** APP_URL without a trailing slash. */
export function appUrl(): string {
  return env.required("APP_URL", "Billing").replace(/\/+$/, "");
}

/** Where Checkout returns to: `{CHECKOUT_SESSION_ID}` is filled in by Stripe. */
export function checkoutReturnUrls(): { success_url: string; cancel_url: string } {
  const base = appUrl();
  return {
    success_url: `${base}/billing/success?session_id={CHECKOUT_SESSION_ID}`,
    cancel_url: `${base}/billing/cancel`,
  };
}

/** Where the billing portal returns to. */
export function portalReturnUrl(): string {
  return `${appUrl()}/billing`;
}
