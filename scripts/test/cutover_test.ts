// The cut-over to platform tokens (20261201110000_gateway_cost_billing) keeps every existing balance's meaning by
// the rule the README states: a token bought before it is a platform token after it. Nothing is rewritten:
// balances, holds and ledger rows are what they were, the ledger still sums to every balance, and the packs and
// plans keep their token counts and prices (so an old balance buys what the same pack buys from now on). Proved
// on a scratch cluster migrated to just before the cut-over, given users with balances, holds and history, then
// migrated across it.
import assert from "node:assert/strict";
import { applyMigrations, psql, scratchDatabase } from "../db/scratch.ts";

const CUT_OVER = "20261201110000";

Deno.test("the cut-over to platform tokens changes no balance, hold, ledger row, pack or plan", async () => {
  await using db = await scratchDatabase("cutover");
  await applyMigrations(db.url, { before: CUT_OVER });
  const q = (sql: string) => psql(db.url, { sql });
  await q(`
    insert into auth.users (id, aud, role, email) select gen_random_uuid(), 'authenticated', 'authenticated',
           'cutover-' || n || '@example.com' from generate_series(1, 5) n;
    select private.update_user_token_balance(u.id, 1000000 * n, 'token_pack_purchase', 'cutover:pack:' || n)
      from (select id, row_number() over (order by email) as n from public.users) u;
    select private.update_user_token_balance(u.id, -12345, 'usage', 'cutover:usage:' || u.email)
      from public.users u;
    select private.gateway_admit(u.id, 'openai', 'gpt-4o-mini', 'cutover:hold:' || u.email, 100, 50, false)
      from public.users u;`);
  const snapshot = () =>
    q(`select json_build_object(
         'balances', (select json_agg(json_build_array(u.email, b.balance, b.held) order by u.email)
                        from public.token_balances b join public.users u on u.id = b.user_id),
         'ledger', (select json_agg(json_build_array(reference, delta, balance_after, reason) order by reference)
                      from public.token_transactions),
         'holds', (select json_agg(json_build_array(request_id, amount) order by request_id) from private.token_holds),
         'packs', (select json_agg(json_build_array(id, tokens, price_cents) order by id) from public.token_packs),
         'plans', (select json_agg(json_build_array(id, monthly_token_allowance, price_monthly_cents, price_yearly_cents)
                                   order by id) from public.subscription_plans))`);
  const before = JSON.parse(await snapshot());
  assert.equal(before.balances.length, 5);
  assert.equal(before.holds.length, 5);

  await applyMigrations(db.url, { from: CUT_OVER, upTo: CUT_OVER });
  const after = JSON.parse(await snapshot());
  assert.deepEqual(after, before, "nothing of what users have changes at the cut-over");
  const mismatches = await q(`
    select count(*) from public.token_balances b
     where b.balance <> (select coalesce(sum(delta), 0) from public.token_transactions t where t.user_id = b.user_id)`);
  assert.equal(mismatches.trim(), "0", "the ledger still sums to every balance");

  // A hold placed before the cut-over settles after it, at the new unit and the price of its admission.
  const settled = await q(`
    select (private.gateway_settle(jsonb_build_object(
              'request_id', h.request_id, 'user_id', h.user_id, 'provider', 'openai', 'model', 'gpt-4o-mini',
              'input_tokens', 100, 'output_tokens', 50, 'status', 'ok', 'admitted_at', h.created_at))).debited_tokens
      from private.token_holds h order by h.request_id limit 1`);
  assert.ok(Number(settled) >= 1, "billed in platform tokens");
  const [held] = (await q(`select count(*) from private.token_holds`)).trim().split("\n");
  assert.equal(held, "4", "its hold is released");
});
