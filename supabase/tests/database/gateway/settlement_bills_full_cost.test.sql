-- private.gateway_settle bills a call its full cost: rounded up to a whole micro-dollar and platform token, cached
-- input at the input price when the model has no cached price, a model never priced its raw tokens 1:1 (with one
-- operator alert a day), a cost beyond the balance in full (below zero by the overage, even beyond what other calls
-- hold, after which even the smallest call is payment_required), at the price in force when the call was admitted.
begin;
\ir ../../_helpers.psql
\ir ../../_fixtures/gateway.psql
select plan(18);

-- Prices, plans and the rate (_fixtures/gateway.psql), with :h_<input>_<max output>: what a call holds on
-- pgtap030-model.
select * from tests.create_gateway_fixtures() \gset

-- gina has exactly one hold of a call of input 100 and max output 300, hank two.
select tests.create_user_on_plan('gw-gina', 'pro', :h_100_300) as gina \gset
select tests.create_user_on_plan('gw-hank', 'pro', 2 * :h_100_300) as hank \gset
select tests.create_user_on_plan('gw-ivy', 'pro', 1000000) as ivy \gset

-- Rounding up, no cached price.
select results_eq(
  format($$select cost_micro_usd, debited_tokens from tests.settle('pgtap030:settle:2', %L, 7, 3, 1)$$, :'ivy'),
  format($$values (9::bigint, %s::bigint)$$, ceil((4 * 1000000::numeric + 3 * 250000::numeric + 1 * 4000000::numeric) / :rate)),
  'The cost is rounded up to a whole micro-dollar (4 + 0.75 + 4 = 8.75 -> 9), the debit up to a whole platform token');
select is((tests.settle('pgtap030:settle:3', :'ivy', 10, 4, 5, 'pgtap030-nocache')).cost_micro_usd, 30::bigint,
  'Cached input of a model without a cached price costs the input price');

-- An unpriced model.
select results_eq(
  format($$select cost_micro_usd, pricing_id, price_missing, debited_tokens
             from tests.settle('pgtap030:settle:5', %L, 10, 0, 5, 'pgtap030-unpriced')$$, :'ivy'),
  $$values (null::bigint, null::bigint, true, 15::bigint)$$,
  'A call to a model that never had a price records cost null and price_missing, and debits its raw tokens 1:1');
select is(
  (select count(*)::int from private.admin_alerts
    where kind = 'unpriced_model' and dedupe_key = 'unpriced_model:openai:pgtap030-unpriced:' || to_char(now(), 'YYYY-MM-DD')),
  1, 'An unpriced model in use raises one operator alert a day');

-- The full cost, even beyond the balance: the overage takes it below zero.
select ceil((600 * 1000000::numeric + 400 * 4000000::numeric) / :rate)::bigint as gina_cost,
       ceil((600 * 1000000::numeric + 300 * 4000000::numeric) / :rate)::bigint as hank_cost \gset
select is(tests.admit(:'gina', 'pgtap030:short:1', 100, 300), 'ok', 'gina''s call holds all of her balance');
select results_eq(
  format($$select debited_tokens, cost_micro_usd from tests.settle('pgtap030:short:1', %L, 600, 0, 400)$$, :'gina'),
  format($$values (%s::bigint, 2200::bigint)$$, :gina_cost),
  'A call that cost more than the balance is debited its full cost (600 + 1600 micro-dollars, in platform tokens)');
select results_eq(format($$select tests.balance(%1$L), tests.held(%1$L)$$, :'gina'),
  format($$values (%s::bigint, 0::bigint)$$, :h_100_300 - :gina_cost),
  'The balance goes below zero by the overage; nothing stays held');
select results_eq(
  $$select delta, balance_after, reason from public.token_transactions where reference = 'usage:pgtap030:short:1'$$,
  format($$values (%s::bigint, %s::bigint, 'usage')$$, -:gina_cost, :h_100_300 - :gina_cost),
  'The overage is an ordinary usage ledger row, its balance_after negative');

select is(tests.admit(:'hank', 'pgtap030:short:2', 100, 300), 'ok', 'hank''s first call holds half his balance');
select is(tests.admit(:'hank', 'pgtap030:short:3', 100, 300), 'ok', 'hank''s second call holds the other half');
select is((tests.settle('pgtap030:short:2', :'hank', 600, 0, 300)).debited_tokens, :hank_cost::bigint,
  'An overrunning call is debited in full, even beyond what other calls have not reserved');
select is(tests.balance(:'hank'), (2 * :h_100_300 - :hank_cost)::bigint,
  'The balance falls below what the other call holds');
select is(tests.held(:'hank'), :h_100_300::bigint, 'The other call''s hold stays');
select results_eq(
  format($$select outcome, balance from private.gateway_admit(%L, 'openai', 'pgtap030-model', 'pgtap030:short:4',
           1, 1, false)$$, :'hank'),
  format($$values ('payment_required', %s::bigint)$$, 2 * :h_100_300 - :hank_cost - :h_100_300),
  'With the unreserved balance below zero even the smallest call is payment_required');

-- The price in force when the call was admitted.
select is(tests.admit(:'ivy', 'pgtap030:settle:4', 10, 10), 'ok', 'ivy''s call is admitted at the current price');
-- The price changes after the call was admitted (its usage record says when: admitted_at, two minutes ago here)
-- and before it is settled (now).
update public.model_pricing set effective_to = now() - interval '1 minute' where id = :'price_model';
insert into public.model_pricing
  (provider, model, input_micro_usd_per_mtok, cached_input_micro_usd_per_mtok, output_micro_usd_per_mtok,
   effective_from)
values ('openai', 'pgtap030-model', 9000000, 9000000, 9000000, now() - interval '1 minute');
select results_eq(
  format($$select pricing_id, cost_micro_usd, debited_tokens
             from tests.settle('pgtap030:settle:4', %L, 1000, 0, 1000,
                               p_admitted_at => now() - interval '2 minutes')$$, :'ivy'),
  format('values (%s::bigint, 5000::bigint, %s::bigint)', :'price_model',
         ceil((1000 * 1000000::numeric + 1000 * 4000000::numeric) / :rate)),
  'A call admitted before a price change is billed at the price in force when it was admitted');
select isnt((select id from private._price_at('openai', 'pgtap030-model', now())), :'price_model'::bigint,
  '(the new price is the one in force at settlement)');

select tests.authenticate_as_anon();
select ok((select count(*) from public.model_pricing where model = 'pgtap030-model') = 2, 'anon reads model prices');
select tests.clear_authentication();

select * from finish();
rollback;
