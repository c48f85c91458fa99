-- A balance below zero is a debt, paid first: a settlement overrunning its hold is one usage ledger row taking the
-- balance below zero (the ledger still summing to it, gateway_status counting it); a later credit, a token pack or
-- the free plan's monthly top-up, pays the debt before anything else; update_user_token_balance refuses any debit on
-- or below zero and accepts any credit, and calls are admitted again once out of debt.
begin;
\ir ../../_helpers.psql
\ir ../../_fixtures/gateway.psql
select plan(21);

-- Prices, plans and the rate (_fixtures/gateway.psql).
select * from tests.create_gateway_fixtures() \gset
select monthly_token_allowance as free_allowance from public.subscription_plans where id = 'free' \gset

-- ned owes what a call cost beyond his balance (see gateway/lease_refusals_hold_nothing).
select tests.create_user_on_plan('pgtap032-ned', 'pgtap032_plan') as ned \gset
select ceil((20000 * 2000000::numeric + 5000 * 8000000::numeric) / :rate)::bigint as ned_debt \gset
select debited_tokens as ned_overage from private.gateway_settle(tests.usage_record('pgtap032:ned:overage', :'ned',
  'openai', 'pgtap032-defaults', 20000, 5000)) \gset

-- ============================================================================ below zero
select tests.create_user_on_plan('pgtap032-oscar', 'pgtap032_plan') as oscar \gset
select ceil((1000 * 2000000::numeric + 500 * 8000000::numeric) / :rate)::bigint as oscar_hold,
       ceil((20000 * 2000000::numeric + 5000 * 8000000::numeric) / :rate)::bigint as oscar_cost \gset
select id as oscar_start from private.update_user_token_balance(:'oscar', :oscar_hold, 'adjustment',
  'pgtap032:start:oscar') \gset
select results_eq(
  format($$select outcome, hold_tokens, balance from private.gateway_admit(%L, 'openai', 'pgtap032-defaults',
           'pgtap032:oscar:1', 1000, 500, false)$$, :'oscar'),
  format($$values ('ok', %s::bigint, 0::bigint)$$, :oscar_hold),
  'oscar''s call holds all of his balance');
select results_eq(
  format($$select debited_tokens from private.gateway_settle(tests.usage_record('pgtap032:oscar:1', %L, 'openai',
           'pgtap032-defaults', 20000, 5000))$$, :'oscar'),
  format($$values (%s::bigint)$$, :oscar_cost),
  'A call using far more than it held is debited its full cost');
select results_eq(format($$select tests.balance(%1$L), tests.held(%1$L)$$, :'oscar'),
  format($$values (%s::bigint, 0::bigint)$$, :oscar_hold - :oscar_cost),
  'The overage takes the balance below zero, and the hold is released');
select results_eq(
  format($$select delta, balance_after, reason from public.token_transactions
             where user_id = %L and reference like 'usage:%%'$$, :'oscar'),
  format($$values (%s::bigint, %s::bigint, 'usage')$$, -:oscar_cost, :oscar_hold - :oscar_cost),
  'The overage is one usage ledger row with the negative balance after it');
select is(
  (select sum(delta) from public.token_transactions where user_id = :'oscar'), tests.balance(:'oscar')::numeric,
  'The ledger sums to the balance');
select is(
  (select s.balances_in_debt - (select count(*) from public.token_balances b join auth.users u on u.id = b.user_id
                                 where b.balance < 0 and u.email not like 'pgtap032-%')
     from private.gateway_status s),
  2::bigint, 'gateway_status counts the balances in debt (ned''s and oscar''s)');

-- A later credit pays the debt first.
select results_eq(
  format($$select delta, balance_after, reason from private.update_user_token_balance(%L, %s, 'token_pack_purchase',
           'pgtap032:pack:oscar')$$, :'oscar', 2 * (:oscar_cost - :oscar_hold)),
  format($$values (%s::bigint, %s::bigint, 'token_pack_purchase')$$, 2 * (:oscar_cost - :oscar_hold),
         :oscar_cost - :oscar_hold),
  'A token pack credited on a debt pays the debt first: the balance after is the pack less the debt');
select results_eq(
  format($$select tests.balance(%1$L), (select sum(delta) from public.token_transactions where user_id = %1$L)$$,
         :'oscar'),
  format($$values (%1$s::bigint, %1$s::numeric)$$, :oscar_cost - :oscar_hold),
  'The balance is what the pack left after the debt, and the ledger still sums to it');
select is(
  (select outcome from private.gateway_admit(:'oscar', 'openai', 'pgtap032-defaults', 'pgtap032:oscar:2', 10, 10, false)),
  'ok', 'Out of debt, oscar''s calls are admitted again');

select throws_ok(
  format($$select private.update_user_token_balance(%L, -1, 'adjustment', 'pgtap032:debit:ned')$$, :'ned'),
  'PB402', format('insufficient token balance: %s available, 1 requested', -:ned_debt),
  'update_user_token_balance refuses any debit on a balance below zero (PB402)');
select throws_ok(
  format($$select private.update_user_token_balance(%L, %s, 'adjustment', 'pgtap032:debit:oscar')$$, :'oscar',
         -(:oscar_cost - :oscar_hold) - 1),
  'PB402', null, 'update_user_token_balance refuses a debit that would take a balance below zero (PB402)');
select throws_ok(
  format($$insert into public.token_transactions (user_id, delta, balance_after, reason, reference)
           values (%L, -1, -1, 'adjustment', 'pgtap032:ledger:negative')$$, :'ned'),
  '23514', null, 'A ledger row may record a negative balance after it only for usage, or a credit paying a debt');
-- A credit smaller than the debt lands, and leaves the balance below zero (a ledger row with delta > 0).
select lives_ok(
  format($$select private.update_user_token_balance(%L, 1, 'token_pack_purchase', 'pgtap032:pack:ned')$$, :'ned'),
  'update_user_token_balance accepts a credit smaller than the debt');
select is(tests.balance(:'ned'), (1 - :ned_debt)::bigint, 'which pays part of the debt');

-- The free plan's top-up on a debt: the whole allowance is credited, the debt paid from it.
select tests.create_user_on_plan('pgtap032-fiona', 'free') as fiona \gset
select ceil((10000 * 2000000::numeric + 1000 * 8000000::numeric) / :rate)::bigint as fiona_debt \gset
select id as fiona_overage from private.gateway_settle(tests.usage_record('pgtap032:fiona:overage', :'fiona', 'openai',
  'pgtap032-defaults', 10000, 1000)) \gset
select is(tests.balance(:'fiona'), (-:fiona_debt)::bigint, 'fiona starts the month owing a call''s overage');
select is(
  (select outcome from private.gateway_admit(:'fiona', 'openai', 'pgtap032-defaults', 'pgtap032:fiona:1', 10, 10, false)),
  'ok', 'fiona''s first call of the month is admitted');
select results_eq(
  format($$select delta, balance_after, reason from public.token_transactions where reference = %L$$,
         'free:' || :'fiona' || ':' || to_char(now() at time zone 'UTC', 'YYYY-MM')),
  format($$values (%s::bigint, %s::bigint, 'subscription_allowance')$$, :free_allowance,
         :free_allowance - :fiona_debt),
  'The free top-up credits the whole allowance on a debt: the balance after is the allowance less the debt');
select is(tests.balance(:'fiona'), (:free_allowance - :fiona_debt)::bigint, 'fiona''s balance is the allowance less the debt');

-- fred owes twice the allowance: a call of allowance x rate / $1 input tokens at $2/M.
select tests.create_user_on_plan('pgtap032-fred', 'free') as fred \gset
select :free_allowance::bigint * :rate / 1000000 as fred_input \gset
select ceil(:fred_input * 2000000::numeric / :rate)::bigint as fred_debt \gset
select id as fred_overage from private.gateway_settle(tests.usage_record('pgtap032:fred:overage', :'fred', 'openai',
  'pgtap032-defaults', :fred_input, 0)) \gset
select is(tests.balance(:'fred'), (-:fred_debt)::bigint, 'fred starts the month owing twice the free allowance');
-- The top-up of a debt larger than the allowance lands too, paying part of it.
select lives_ok(
  format($$select * from private.gateway_admit(%L, 'openai', 'pgtap032-defaults', 'pgtap032:fred:1', 10, 10, false)$$,
         :'fred'),
  'A free user owing more than the allowance is answered (payment_required), not an error');
select is(
  (select balance_after from public.token_transactions
    where reference = 'free:' || :'fred' || ':' || to_char(now() at time zone 'UTC', 'YYYY-MM')),
  (:free_allowance - :fred_debt)::bigint,
  'and still topped up: the allowance pays part of the debt');

select * from finish();
rollback;
