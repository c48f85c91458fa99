// POST /functions/v1/stripe-webhook — Stripe's deliveries (verify_jwt = false: Stripe signs, it has no JWT).
import { stripeWebhookHandler, webhookConfigFromEnv } from "./handler.ts";

Deno.serve(stripeWebhookHandler(webhookConfigFromEnv()));
