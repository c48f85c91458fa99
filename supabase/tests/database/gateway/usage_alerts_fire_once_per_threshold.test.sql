-- check_usage_alerts counts the platform tokens billed (not raw tokens) in the UTC month or the subscription's
-- current period: one usage alert per threshold (50, 80, 100 %) and period, earlier alerts left as they were, and a
-- usage_spike admin alert for an hour far above the user's trailing average, once; a user reads their own alerts and
-- marks them read, and can change or delete nothing else.
begin;
\ir ../../_helpers.psql
\ir ../../_fixtures/gateway.psql
select plan(21);

-- Prices, plans and the rate (_fixtures/gateway.psql).
select * from tests.create_gateway_fixtures() \gset
select date_trunc('month', now() at time zone 'UTC') at time zone 'UTC' as month_start \gset

-- ============================================================================ check_usage_alerts
select tests.create_user_on_plan('gw-jack', 'pgtap030_alerts') as jack \gset
select tests.create_user_on_plan('gw-kate', 'pgtap030_alerts') as kate \gset
select tests.create_user_on_plan('gw-leo', 'pro') as leo \gset
select tests.create_user_on_plan('gw-mia', 'pro') as mia \gset
insert into public.user_subscriptions
  (user_id, plan_id, billing_period, status, stripe_subscription_id, stripe_customer_id, current_period_start,
   stripe_updated_at)
values (:'kate', 'pgtap030_alerts', 'monthly', 'active', 'sub_pgtap030Kate', 'cus_pgtap030Kate',
        now() - interval '2 days', now());

select tests.usage(:'jack', 'pgtap030:alert:1', 850);
select tests.usage(:'kate', 'pgtap030:alert:2', 900, now() - interval '5 days');
select tests.usage(:'kate', 'pgtap030:alert:3', 100);
select tests.usage(:'leo', 'pgtap030:spike:1', 60000);
select tests.usage(:'mia', 'pgtap030:steady:1', 1680000, now() - interval '3 days');
select tests.usage(:'mia', 'pgtap030:steady:2', 60000);

select ok(private.check_usage_alerts() >= 3, 'check_usage_alerts adds alerts');
select results_eq(
  format($$select threshold_percent, period_start, used_tokens, allowance_tokens from public.usage_alerts
             where user_id = %L order by threshold_percent$$, :'jack'),
  format($$values (50, %1$L::timestamptz, 850::bigint, 1000::bigint), (80, %1$L::timestamptz, 850::bigint, 1000::bigint)$$,
         :'month_start'),
  '850 of 1000 platform tokens billed this month: the 50 % and 80 % alerts, for the UTC month');
select is_empty(format('select 1 from public.usage_alerts where user_id = %L', :'kate'),
  'Usage before the subscription''s current period does not count (100 of 1000)');
select results_eq(
  format($$select kind, details ->> 'last_hour_tokens' from private.admin_alerts where user_id = %L$$, :'leo'),
  $$values ('usage_spike', '60000')$$,
  'An hour far above the user''s trailing average raises a usage_spike admin alert');
select is_empty(format('select 1 from private.admin_alerts where user_id = %L', :'mia'),
  'An hour within 10x the trailing hourly average raises none');

select private.check_usage_alerts();
select is((select count(*)::int from public.usage_alerts where user_id in (:'jack', :'kate')), 2,
  'Running it again adds no usage alert');
select is((select count(*)::int from private.admin_alerts where user_id = :'leo'), 1,
  'Running it again adds no spike alert in the same hour');

select tests.usage(:'jack', 'pgtap030:alert:4', 200);
select tests.usage(:'kate', 'pgtap030:alert:5', 450);
select private.check_usage_alerts();
select results_eq(
  format('select threshold_percent, used_tokens from public.usage_alerts where user_id = %L order by threshold_percent',
         :'jack'),
  $$values (50, 850::bigint), (80, 850::bigint), (100, 1050::bigint)$$,
  'Crossing 100 % adds only the 100 % alert; earlier alerts stay as they were');
select results_eq(
  format('select threshold_percent, period_start from public.usage_alerts where user_id = %L', :'kate'),
  $$values (50, now() - interval '2 days')$$,
  '550 of 1000 in the subscription''s period: the 50 % alert, for that period');

select id as jack_alert from public.usage_alerts where user_id = :'jack' and threshold_percent = 50 \gset
select id as kate_alert from public.usage_alerts where user_id = :'kate' \gset

select tests.clear_authentication();
select tests.authenticate_as(:'jack');
select results_eq('select threshold_percent from public.usage_alerts order by threshold_percent',
  array[50, 80, 100], 'jack reads his own three usage alerts');
select is(tests.affected_rows(format('update public.usage_alerts set read_at = now() where id = %L', :'jack_alert')), 1,
  'jack marks his own alert read');
select is(tests.affected_rows(format('update public.usage_alerts set read_at = now() where id = %L', :'kate_alert')), 0,
  'jack cannot mark kate''s alert read');
select throws_ok(format('update public.usage_alerts set used_tokens = 0 where id = %L', :'jack_alert'),
  '42501', null, 'jack cannot change anything but read_at');
select throws_ok(format('delete from public.usage_alerts where id = %L', :'jack_alert'),
  '42501', null, 'jack cannot delete an alert');
select results_eq('select request_id from public.token_usage order by request_id',
  array['pgtap030:alert:1', 'pgtap030:alert:4'], 'jack reads exactly his own two usage rows');
select tests.clear_authentication();
select isnt((select read_at from public.usage_alerts where id = :'jack_alert'), null, 'jack''s alert is marked read');
select is((select read_at from public.usage_alerts where id = :'kate_alert'), null, 'kate''s alert is untouched');

-- ============================================================================ platform tokens, not raw tokens
select tests.create_user_on_plan('pgtap032-wes', 'pgtap032_alerts') as wes \gset
select tests.create_user_on_plan('pgtap032-xena', 'pgtap032_alerts') as xena \gset
select tests.create_user_on_plan('pgtap032-yan', 'pgtap032_plan') as yan \gset
select tests.create_user_on_plan('pgtap032-zed', 'pgtap032_plan') as zed \gset
-- Calls billed few platform tokens for many raw tokens, and the other way round.
insert into public.token_usage (request_id, user_id, provider, model, input_tokens, output_tokens, cost_micro_usd,
                                pricing_id, debited_tokens, status)
values ('pgtap032:alert:wes', :'wes', 'anthropic', 'pgtap032-all', 10, 0, 0, null, 1000, 'ok'),
       ('pgtap032:alert:xena', :'xena', 'openai', 'pgtap032-tiny', 5000, 0, 0, null, 400, 'ok'),
       ('pgtap032:spike:yan', :'yan', 'anthropic', 'pgtap032-all', 100, 0, 0, null, 60000, 'ok'),
       ('pgtap032:spike:zed', :'zed', 'openai', 'pgtap032-tiny', 60000, 0, 0, null, 100, 'ok');
select private.check_usage_alerts();
select results_eq(
  format('select threshold_percent, used_tokens, allowance_tokens from public.usage_alerts where user_id = %L order by 1',
         :'wes'),
  $$values (50, 1000::bigint, 1000::bigint), (80, 1000::bigint, 1000::bigint), (100, 1000::bigint, 1000::bigint)$$,
  'A call billed 1000 platform tokens (of 10 raw tokens) crosses all three thresholds of an allowance of 1000');
select is_empty(format('select 1 from public.usage_alerts where user_id = %L', :'xena'),
  'A call of 5000 raw tokens billed 400 platform tokens crosses none (40 %)');
select results_eq(
  format($$select kind, details ->> 'last_hour_tokens' from private.admin_alerts where user_id = %L$$, :'yan'),
  $$values ('usage_spike', '60000')$$,
  'A spike is measured in platform tokens billed (60000 of 100 raw tokens)');
select is_empty(format('select 1 from private.admin_alerts where user_id = %L', :'zed'),
  'and 60000 raw tokens billed 100 platform tokens are no spike');

select * from finish();
rollback;
