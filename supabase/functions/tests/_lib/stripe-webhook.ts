// What the webhook test files share: a test whose deliveries start with an empty per-IP window, a user with
// a Stripe customer, and reads of what the webhook wrote.
import { Redis } from "npm:@upstash/redis@1.39.0";
import { createTestUser, type Sql, type TestUser } from "./db.ts";
import { stack } from "./stack.ts";
import { ids } from "./stripe-events.ts";

/** The local Stripe price ids of the seed (supabase/seed.sql). */
export const PRICES = {
  proMonthly: "price_local_pro_monthly",
  proYearly: "price_local_pro_yearly",
  maxMonthly: "price_local_max_monthly",
  maxYearly: "price_local_max_yearly",
};

/** Webhook tests send many deliveries from 127.0.0.1; each test starts with an empty per-IP window. */
export async function resetWebhookRateLimit(sql: Sql): Promise<void> {
  const redis = new Redis({ url: stack.upstashUrl, token: stack.upstashToken });
  const keys = await redis.keys("aie:rl:stripe-webhook:*");
  if (keys.length) await redis.del(...keys);
  await sql`delete from private.rate_limit_buckets where key like 'stripe-webhook:%'`;
}

export function webhookTest(sql: Sql, name: string, fn: () => Promise<void>): void {
  Deno.test(name, async () => {
    await resetWebhookRateLimit(sql);
    await fn();
  });
}

export type Customer = TestUser & { customer: string };

/** A user linked to a new Stripe customer id; remembered in `users` for the teardown. */
export async function newCustomer(sql: Sql, users: TestUser[]): Promise<Customer> {
  const customer = ids.customer();
  const user = await createTestUser(sql, { customer });
  users.push(user);
  return { ...user, customer };
}

export const balance = async (sql: Sql, userId: string): Promise<number> =>
  Number((await sql`select balance from public.token_balances where user_id = ${userId}`)[0].balance);

export const eventRow = async (sql: Sql, id: string) =>
  (await sql`select status, attempts, last_error, ignored_reason from private.stripe_webhook_events
              where id = ${id}`)[0];

/** The helpers above bound to one test file's connection and user list. */
export function webhookSuite(sql: Sql, users: TestUser[]) {
  return {
    test: (name: string, fn: () => Promise<void>) => webhookTest(sql, name, fn),
    newCustomer: () => newCustomer(sql, users),
    balance: (userId: string) => balance(sql, userId),
    eventRow: (id: string) => eventRow(sql, id),
    resetRateLimit: () => resetWebhookRateLimit(sql),
  };
}
