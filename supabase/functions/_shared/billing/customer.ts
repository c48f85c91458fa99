// The user's one Stripe customer: read from public.users, else created in Stripe with idempotency key
// `customer:<user id>` (two racing first checkouts get the same customer back from Stripe) and stored only where
// none is stored yet. The user's id and email always come from the verified token and public.users, never from a
// request body.
import type { AuthUser } from "../auth/user.ts";
import { unauthorized } from "../auth/token.ts";
import type { Database } from "../database.types.ts";
import { db } from "../platform/db.ts";
import type { Logger } from "../platform/log.ts";
import { callStripe, stripe } from "./stripe.ts";

/** What billing knows of a user: who they are, and where Stripe may write to them. */
export type BillingUser = Pick<AuthUser, "id" | "email">;

type CustomerColumn = Pick<Database["public"]["Tables"]["users"]["Row"], "stripe_customer_id">;

/**
 * The user's Stripe customer id; creates the customer on first use. Safe under concurrency: racing calls
 * get the same customer from Stripe (same idempotency key), the first to store it wins, and every caller
 * returns what is stored. Never two customers for one user.
 */
export async function ensureStripeCustomer(user: BillingUser, log: Logger): Promise<string> {
  const sql = db();
  const stored = async () => {
    const [row] = await sql<CustomerColumn[]>`
      select stripe_customer_id from public.users where id = ${user.id}`;
    if (!row) throw unauthorized("User not found");
    return row.stripe_customer_id;
  };

  const existing = await stored();
  if (existing) return existing;

  const customer = await callStripe("customers.create", log, () =>
    stripe().customers.create(
      { ...(user.email && { email: user.email }), metadata: { user_id: user.id } },
      { idempotencyKey: `customer:${user.id}` },
    ));
  await sql`
    update public.users set stripe_customer_id = ${customer.id}
     where id = ${user.id} and stripe_customer_id is null`;
  const linked = await stored();
  if (!linked) throw new Error(`stripe_customer_id of user ${user.id} is still null after linking`);
  if (linked !== customer.id) {
    log.warn("stripe customer already linked; the new one is unused", {
      stored: linked,
      created: customer.id,
    });
  }
  return linked;
}
