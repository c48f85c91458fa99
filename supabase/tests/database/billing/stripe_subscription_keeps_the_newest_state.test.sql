-- A user_subscriptions row, and the user's plan, hold the state of the highest-ranked event of the subscription,
-- whatever the order of delivery: a paid checkout puts the user on the plan and outranks the incomplete
-- customer.subscription.created arriving after it; a plan change switches the plan, and an older event delivered
-- afterwards changes nothing; past_due holds against an older active event; the deletion puts the user back on free
-- with the row canceled. (alice's events are built by tests.alice_subscription_event, in _fixtures/billing.psql.)
begin;
\ir ../../_helpers.psql
\ir ../../_fixtures/billing.psql
select plan(20);

select * from tests.create_stripe_fixtures() \gset
-- alice's token pack checkout has linked her to her Stripe customer.
update public.users set stripe_customer_id = 'cus_pgtap022Alice' where id = :'alice_id';

-- ======================================================================= a subscription checkout
select is(tests.deliver(tests.alice_subscription_event('checkout')),
  'processed', 'checkout.session.completed for a subscription is processed');
select results_eq(
  format('select plan, plan_status, stripe_subscription_id from public.users where id = %L', :'alice_id'),
  $$values ('pro'::text, 'active'::text, 'sub_pgtap022Alice'::text)$$,
  'The subscription checkout puts alice on pro, active, with her subscription id');
select results_eq(
  format('select plan_id, billing_period, status, is_current, state_source, stripe_created_at, stripe_updated_at,
                 stripe_event_id
            from public.user_subscriptions where user_id = %L', :'alice_id'),
  $$values ('pro'::text, 'monthly'::text, 'active'::text, true, 'checkout_session'::text, to_timestamp(1795000090),
            to_timestamp(1795000100), 'evt_pgtap022_cs_sub'::text)$$,
  'alice has one current, active pro subscription row holding the paid checkout''s state');
-- Stripe's customer.subscription.created (still incomplete while the first payment is made) may arrive after
-- the paid checkout, even with a later created time: a paid checkout outranks an incomplete snapshot.
select is(tests.deliver(tests.alice_subscription_event('created_incomplete')),
  'processed', 'An incomplete customer.subscription.created delivered after the paid checkout is acknowledged');
select results_eq(
  format($$select s.status, s.state_source, s.stripe_event_id, u.plan, u.plan_status
             from public.user_subscriptions s join public.users u on u.id = s.user_id where s.user_id = %L$$,
         :'alice_id'),
  $$values ('active'::text, 'checkout_session'::text, 'evt_pgtap022_cs_sub'::text, 'pro'::text, 'active'::text)$$,
  'The incomplete snapshot does not undo the paid checkout: the row stays active and alice stays on pro');

-- ================================================================ a plan change, and an older event
select is(tests.deliver(tests.alice_subscription_event('to_max')),
  'processed', 'customer.subscription.updated to the max monthly price is processed');
select is((select plan from public.users where id = :'alice_id'), 'max',
  'The max monthly price switches alice to max');
select results_eq(
  format('select plan_id, billing_period, stripe_price_id, current_period_start, current_period_end,
                 stripe_updated_at, stripe_event_id, state_source
            from public.user_subscriptions where user_id = %L and is_current', :'alice_id'),
  $$values ('max'::text, 'monthly'::text, 'price_pgtap022MaxM'::text, to_timestamp(1795000200),
            to_timestamp(1795000200 + 2592000), to_timestamp(1795000200), 'evt_pgtap022_sub_upd'::text,
            'subscription'::text)$$,
  'The subscription row holds max, monthly, the price and the period from items.data[0], stamped with the event');

select is(tests.deliver(tests.alice_subscription_event('older_pro')),
  'processed', 'An older customer.subscription.updated delivered afterwards is acknowledged');
select is((select plan from public.users where id = :'alice_id'), 'max',
  'The older event does not switch alice back to pro');
select results_eq(
  format('select plan_id, cancel_at_period_end, stripe_updated_at, stripe_event_id
            from public.user_subscriptions where user_id = %L', :'alice_id'),
  $$values ('max'::text, false, to_timestamp(1795000200), 'evt_pgtap022_sub_upd'::text)$$,
  'The older event changes nothing on the subscription row (it keeps the newer event''s state)');

-- ================================================================================ past_due
select is(tests.deliver(tests.alice_subscription_event('past_due')),
  'processed', 'customer.subscription.updated with status past_due is processed');
select results_eq(
  format($$select s.status, s.is_current, u.plan, u.plan_status, u.stripe_subscription_id
             from public.user_subscriptions s join public.users u on u.id = s.user_id
            where s.stripe_subscription_id = 'sub_pgtap022Alice' and u.id = %L$$, :'alice_id'),
  $$values ('past_due'::text, true, 'max'::text, 'past_due'::text, 'sub_pgtap022Alice'::text)$$,
  'past_due makes the subscription row and alice''s plan_status past_due; she keeps max during the retries');
select is(tests.deliver(tests.alice_subscription_event('older_active')),
  'processed', 'An older customer.subscription.updated (active) delivered after the past_due one is acknowledged');
select results_eq(
  format($$select s.status, s.stripe_event_id, u.plan_status
             from public.user_subscriptions s join public.users u on u.id = s.user_id
            where s.stripe_subscription_id = 'sub_pgtap022Alice' and u.id = %L$$, :'alice_id'),
  $$values ('past_due'::text, 'evt_pgtap022_sub_pastdue'::text, 'past_due'::text)$$,
  'The older event does not undo past_due, on the row or on alice''s plan_status');

-- =========================================================================== cancellation
select is(tests.deliver(tests.alice_subscription_event('deleted')),
  'processed', 'customer.subscription.deleted is processed');
select results_eq(
  format('select plan, plan_status, stripe_subscription_id from public.users where id = %L', :'alice_id'),
  $$values ('free'::text, 'active'::text, null::text)$$,
  'customer.subscription.deleted puts alice back on free, active, with no subscription id');
select results_eq(
  format('select stripe_subscription_id, status, is_current, stripe_event_id from public.user_subscriptions
           where user_id = %L', :'alice_id'),
  $$values ('sub_pgtap022Alice'::text, 'canceled'::text, true, 'evt_pgtap022_sub_del'::text)$$,
  'The deleted subscription''s row is canceled and, as alice''s only subscription, still her current one');

-- ====================================================================================== the audit
select * from tests.audit_is_complete($$values ('processed'::text, 7)$$, '7 processed');

select * from finish();
rollback;
