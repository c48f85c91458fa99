-- Paid invoices credit the plan's allowance once per invoice, whatever event carries it (monthly, or twelve months
-- for a yearly price), and never touch the subscription: its row keeps the state of the subscription's own events
-- and the plan follows those alone; a failed payment notifies the user once, and changes neither; after the
-- deletion, a final proration-only invoice is ignored and a late renewal paid before it is still credited, neither
-- bringing the subscription back. (alice's subscription events are built by tests.alice_subscription_event.)
begin;
\ir ../../_helpers.psql
\ir ../../_fixtures/billing.psql
select plan(31);

select * from tests.create_stripe_fixtures() \gset
-- alice's token pack checkout has linked her to her Stripe customer.
update public.users set stripe_customer_id = 'cus_pgtap022Alice' where id = :'alice_id';
-- alice has 1 000 000 tokens from elsewhere (the token pack she bought) and a subscription on max monthly: its paid
-- checkout (pro monthly), the incomplete snapshot arriving after it, the switch to max and an older update arriving
-- late, as billing/stripe_subscription_keeps_the_newest_state delivers them.
select private.update_user_token_balance(:'alice_id', 1000000, 'adjustment', 'pgtap022:alice:pack');
select tests.deliver(tests.alice_subscription_event('checkout'));
select tests.deliver(tests.alice_subscription_event('created_incomplete'));
select tests.deliver(tests.alice_subscription_event('to_max'));
select tests.deliver(tests.alice_subscription_event('older_pro'));

-- ============================================================================= invoice allowances
create table tests.alice_subscription_before_invoices as
select plan_id, billing_period, status, stripe_price_id, current_period_start, current_period_end,
       cancel_at_period_end, is_current, stripe_created_at, stripe_updated_at, stripe_event_id, state_source
  from public.user_subscriptions where stripe_subscription_id = 'sub_pgtap022Alice';

select tests.stripe_event('evt_pgtap022_inv_paid', 'invoice.payment_succeeded', 1795000300,
  tests.invoice('in_pgtap022Alice1', 'cus_pgtap022Alice', 'sub_pgtap022Alice', 'price_pgtap022MaxM', 1795000300))
  as inv_paid \gset
select is(tests.deliver(:'inv_paid'), 'processed', 'invoice.payment_succeeded is processed');
select is(tests.balance(:'alice_id'), (1000000 + 25000000)::bigint,
  'invoice.payment_succeeded credits the max monthly allowance (25 000 000) once');
select results_eq(
  $$select reason, delta, metadata from public.token_transactions where reference = 'invoice:in_pgtap022Alice1'$$,
  $$values ('subscription_allowance'::text, 25000000::bigint,
            '{"invoice": "in_pgtap022Alice1", "subscription": "sub_pgtap022Alice", "plan": "max"}'::jsonb)$$,
  'The allowance is one subscription_allowance ledger row keyed by the invoice, with its subscription and plan');
select is(
  tests.deliver(tests.stripe_event('evt_pgtap022_inv_paid2', 'invoice.paid', 1795000301,
    tests.invoice('in_pgtap022Alice1', 'cus_pgtap022Alice', 'sub_pgtap022Alice', 'price_pgtap022MaxM', 1795000300))),
  'processed', 'invoice.paid for the same invoice (a new event id) is processed');
select is(tests.balance(:'alice_id'), (1000000 + 25000000)::bigint,
  'A second event for the same invoice does not credit the allowance again');
select is(tests.deliver(:'inv_paid'), 'duplicate', 'The first invoice event delivered again is a duplicate');
select is(tests.balance(:'alice_id'), (1000000 + 25000000)::bigint, 'The duplicate invoice event credits nothing');
select results_eq(
  $$select plan_id, billing_period, status, stripe_price_id, current_period_start, current_period_end,
           cancel_at_period_end, is_current, stripe_created_at, stripe_updated_at, stripe_event_id, state_source
      from public.user_subscriptions where stripe_subscription_id = 'sub_pgtap022Alice'$$,
  $$select * from tests.alice_subscription_before_invoices$$,
  'The invoice events change nothing on alice''s subscription row');
select results_eq(
  format($$select s.stripe_updated_at, s.stripe_event_id, s.plan_id, u.plan
             from public.user_subscriptions s join public.users u on u.id = s.user_id
            where s.stripe_subscription_id = 'sub_pgtap022Alice' and u.id = %L$$, :'alice_id'),
  $$values (to_timestamp(1795000200), 'evt_pgtap022_sub_upd'::text, 'max'::text, 'max'::text)$$,
  'The row still holds the subscription event''s state (not stamped by the newer invoice events), and alice stays on max');

-- Yearly: bob's first invoice credits twelve months from the yearly price on its period line, and creates no
-- subscription (only the subscription's own events do).
select is(
  tests.deliver(tests.stripe_event('evt_pgtap022_inv_bob', 'invoice.payment_succeeded', 1795000350,
    tests.invoice('in_pgtap022Bob1', 'cus_pgtap022Bob', 'sub_pgtap022Bob', 'price_pgtap022ProY', 1795000350,
                  jsonb_build_object('user_id', :'bob_id')))),
  'processed', 'invoice.payment_succeeded for a yearly pro subscription is processed');
select is(tests.balance(:'bob_id'), (12 * 5000000)::bigint,
  'A yearly invoice credits twelve months of the pro allowance (60 000 000)');
select is((select metadata ->> 'plan' from public.token_transactions where reference = 'invoice:in_pgtap022Bob1'),
  'pro', 'bob''s allowance is recorded as the pro plan''s');
select is((select count(*)::int from public.user_subscriptions where user_id = :'bob_id'), 0,
  'bob''s invoice creates no user_subscriptions row');
select results_eq(
  format('select plan, plan_status, stripe_subscription_id, stripe_customer_id from public.users where id = %L', :'bob_id'),
  $$values ('free'::text, 'active'::text, null::text, 'cus_pgtap022Bob'::text)$$,
  'bob''s invoice links him to his Stripe customer but leaves his plan to the subscription''s events');

-- ================================================================================ payment failures
-- invoice.payment_failed only tells the user; the status comes from the subscription's own events.
select tests.stripe_event('evt_pgtap022_fail', 'invoice.payment_failed', 1795000400,
  tests.invoice('in_pgtap022Alice2', 'cus_pgtap022Alice', 'sub_pgtap022Alice', 'price_pgtap022MaxM', 1795000400))
  as inv_failed \gset
select is(tests.deliver(:'inv_failed'), 'processed', 'invoice.payment_failed is processed');
select results_eq(
  format($$select kind, data ->> 'hosted_invoice_url', data ->> 'subscription' from public.notifications
            where user_id = %L and dedupe_key = 'invoice_payment_failed:in_pgtap022Alice2'$$, :'alice_id'),
  $$values ('payment_failed'::text, 'https://invoice.stripe.com/i/in_pgtap022Alice2'::text, 'sub_pgtap022Alice'::text)$$,
  'invoice.payment_failed notifies alice once, with the invoice link and the subscription');
select results_eq(
  format($$select s.status, s.stripe_event_id, u.plan, u.plan_status
             from public.user_subscriptions s join public.users u on u.id = s.user_id
            where s.stripe_subscription_id = 'sub_pgtap022Alice' and u.id = %L$$, :'alice_id'),
  $$values ('active'::text, 'evt_pgtap022_sub_upd'::text, 'max'::text, 'active'::text)$$,
  'invoice.payment_failed changes neither the subscription row nor alice''s plan_status');
select is(
  tests.deliver(tests.stripe_event('evt_pgtap022_fail_again', 'invoice.payment_failed', 1795000401,
    tests.invoice('in_pgtap022Alice2', 'cus_pgtap022Alice', 'sub_pgtap022Alice', 'price_pgtap022MaxM', 1795000400))),
  'processed', 'The same failed invoice under a new event id is processed');
select is(
  (select count(*)::int from public.notifications
    where user_id = :'alice_id' and data ->> 'invoice' = 'in_pgtap022Alice2'),
  1, 'The same failed invoice under a new event id notifies alice only once');
select is(tests.deliver(:'inv_failed'), 'duplicate', 'The failure event delivered again is a duplicate');
select is(
  (select count(*)::int from public.notifications
    where user_id = :'alice_id' and data ->> 'invoice' = 'in_pgtap022Alice2'),
  1, 'A duplicate delivery adds no notification');

-- =========================================================================== cancellation
-- The subscription goes past_due (an older active event arriving late) and is deleted.
select tests.deliver(tests.alice_subscription_event('past_due'));
select tests.deliver(tests.alice_subscription_event('older_active'));
select tests.deliver(tests.alice_subscription_event('deleted'));
select is(tests.balance(:'alice_id'), (1000000 + 25000000)::bigint,
  'Cancelling keeps the tokens alice already has');
-- Stripe's final invoice of a canceled subscription (prorations only) is paid after the deletion event.
select is(
  tests.deliver(tests.stripe_event('evt_pgtap022_inv_final', 'invoice.paid', 1795000510,
    tests.invoice('in_pgtap022AliceFinal', 'cus_pgtap022Alice', 'sub_pgtap022Alice', 'price_pgtap022MaxM', 1795000200,
                  '{}', true)
      || '{"billing_reason": "subscription_update"}')),
  'ignored', 'The final invoice of the canceled subscription, billing only a proration, is ignored');
select results_eq(
  $$select status, ignored_reason from private.stripe_webhook_events where id = 'evt_pgtap022_inv_final'$$,
  $$values ('ignored'::text, 'the invoice bills no subscription period (prorations or one-off items only)'::text)$$,
  'The proration-only invoice is recorded as ignored, with the reason');
select is(tests.balance(:'alice_id'), (1000000 + 25000000)::bigint, 'The proration-only invoice credits nothing');
select results_eq(
  format($$select u.plan, s.status, s.is_current from public.users u
             join public.user_subscriptions s on s.stripe_subscription_id = 'sub_pgtap022Alice' where u.id = %L$$,
         :'alice_id'),
  $$values ('free'::text, 'canceled'::text, true)$$,
  'A paid invoice of a canceled subscription does not bring it (and the max plan) back');
-- A renewal paid before the deletion, delivered after it: the period was paid for, so it is credited.
select is(
  tests.deliver(tests.stripe_event('evt_pgtap022_inv_late', 'invoice.paid', 1795000490,
    tests.invoice('in_pgtap022Alice3', 'cus_pgtap022Alice', 'sub_pgtap022Alice', 'price_pgtap022MaxM', 1795000450))),
  'processed', 'A renewal paid before the deletion but delivered after it is processed');
select is(tests.balance(:'alice_id'), (1000000 + 25000000 + 25000000)::bigint,
  'The late renewal credits its max allowance');
select results_eq(
  format($$select u.plan, s.status, s.stripe_event_id from public.users u
             join public.user_subscriptions s on s.stripe_subscription_id = 'sub_pgtap022Alice' where u.id = %L$$,
         :'alice_id'),
  $$values ('free'::text, 'canceled'::text, 'evt_pgtap022_sub_del'::text)$$,
  'The late renewal does not bring the subscription back either');

-- ====================================================================================== the audit
-- (processed: alice's 7 subscription events and 6 invoice events)
select * from tests.audit_is_complete($$values ('duplicate'::text, 2), ('ignored', 1), ('processed', 13)$$, '13 processed, 1 ignored, 2 duplicates');

select * from finish();
rollback;
