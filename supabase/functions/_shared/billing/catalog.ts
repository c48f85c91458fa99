// What can be bought: the Stripe price of a plan and period (404 if not offered, 503 if no price is set), an
// active token pack (404), and the 409 for a user who already has a live paid plan. Prices live in the database
// (public.subscription_plans, public.token_packs).
import type { Database } from "../database.types.ts";
import { HttpError } from "../http/errors.ts";
import { db } from "../platform/db.ts";
import type { BillingUser } from "./customer.ts";

type PublicTables = Database["public"]["Tables"];

export type PaidPlan = "pro" | "max";
export type BillingPeriod = "monthly" | "yearly";

/**
 * 409 when the user already has a Stripe subscription past its first payment and not ended (live, or unpaid
 * or paused: it could still bill): a second one would bill twice, so changes go through the portal. Where a
 * status lies in a subscription's life is SQL's rule (private._subscription_stage).
 */
export async function assertNoLivePlan(user: BillingUser): Promise<void> {
  const [row] = await db()<Pick<PublicTables["user_subscriptions"]["Row"], "plan_id" | "status">[]>`
    select plan_id, status from public.user_subscriptions
     where user_id = ${user.id} and private._subscription_stage(status) = 'live'
     order by is_current desc limit 1`;
  if (row) {
    throw new HttpError(
      "conflict",
      `You already have the ${row.plan_id} plan (${row.status}); change or cancel it in the billing portal`,
    );
  }
}

/** The price id column of a plan for the period asked (stripe_price_monthly or stripe_price_yearly). */
type PlanPrice = { price_id: PublicTables["subscription_plans"]["Row"]["stripe_price_monthly"] };

/** The Stripe price id of a plan and period: 404 if the plan is not offered, 503 if no price is set. */
export async function planPriceId(plan: PaidPlan, period: BillingPeriod): Promise<string> {
  const [row] = await db()<PlanPrice[]>`
    select case when ${period} = 'yearly' then stripe_price_yearly else stripe_price_monthly end as price_id
      from public.subscription_plans
     where id = ${plan} and is_active`;
  if (!row) throw new HttpError("not_found", `The ${plan} plan is not offered`);
  if (!row.price_id) {
    throw new HttpError(
      "service_unavailable",
      `Billing for the ${plan} plan (${period}) is not configured on the server: no Stripe price id`,
    );
  }
  return row.price_id;
}

/**
 * A token pack as Checkout sells it. `tokens` is a bigint column (number in the generated type): selected as
 * text, so it reaches Stripe's metadata exactly, whatever its size.
 */
export type TokenPack =
  & Pick<PublicTables["token_packs"]["Row"], "id" | "name" | "price_cents" | "currency">
  & { tokens: string };

/** An active token pack, else 404. */
export async function activeTokenPack(packId: string): Promise<TokenPack> {
  const [pack] = await db()<TokenPack[]>`
    select id, name, tokens::text as tokens, price_cents, currency
      from public.token_packs
     where id = ${packId} and is_active`;
  if (!pack) throw new HttpError("not_found", `No token pack '${packId}'`);
  return pack;
}
