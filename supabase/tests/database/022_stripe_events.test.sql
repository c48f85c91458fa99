-- The Stripe webhook pipeline in SQL, fed hand-built events shaped like Stripe API version 2026-10-28
-- (epoch-seconds `created`; a subscription's current_period_* on items.data[0]; an invoice's subscription
-- under parent.subscription_details and its line price under lines.data[0].pricing.price_details.price).
-- Each event id is applied once; each effect (credit, plan change, notification) once per Stripe object
-- whatever event carries it; an older event never overwrites newer state; a failure is recorded, retried,
-- dead-lettered after 3 attempts and replayable; every delivery is audited.
begin;
\ir ../_helpers.psql
select plan(103);

-- ===================================================================================== helpers
-- A Stripe event envelope around a data.object.
create function tests.stripe_event(p_id text, p_type text, p_created bigint, p_object jsonb) returns jsonb
language sql immutable
as $$
  select jsonb_build_object(
    'id', p_id, 'object', 'event', 'api_version', '2026-10-28', 'created', p_created, 'livemode', false,
    'pending_webhooks', 1, 'request', jsonb_build_object('id', null, 'idempotency_key', null),
    'type', p_type, 'data', jsonb_build_object('object', p_object))
$$;

-- Delivers an event as the stripe-webhook function does and remembers the delivery and its status.
create table tests.deliveries (n serial primary key, event_id text not null, status text not null);
create function tests.deliver(p_event jsonb) returns text
language plpgsql
as $$
declare
  v_status text;
begin
  select h.status into v_status
    from private.handle_stripe_event(p_event, 'req_' || (p_event ->> 'id'), '203.0.113.7') h;
  insert into tests.deliveries (event_id, status) values (p_event ->> 'id', v_status);
  return v_status;
end;
$$;

-- A subscription object (items.data[0] carries the price and the current period).
create function tests.subscription(p_id text, p_customer text, p_status text, p_price text, p_period_start bigint,
                                   p_metadata jsonb default '{}', p_cancel_at_period_end boolean default false)
returns jsonb
language sql immutable
as $$
  select jsonb_build_object(
    'id', p_id, 'object', 'subscription', 'customer', p_customer, 'status', p_status,
    'cancel_at_period_end', p_cancel_at_period_end, 'canceled_at', null, 'ended_at', null,
    'metadata', p_metadata,
    'items', jsonb_build_object('object', 'list', 'data', jsonb_build_array(jsonb_build_object(
      'id', 'si_' || substr(p_id, 5), 'object', 'subscription_item', 'quantity', 1,
      'price', jsonb_build_object('id', p_price, 'object', 'price', 'recurring',
                                  jsonb_build_object('interval', 'month')),
      'current_period_start', p_period_start, 'current_period_end', p_period_start + 2592000))))
$$;

-- An invoice of a subscription (parent.subscription_details, line pricing.price_details.price).
create function tests.invoice(p_id text, p_customer text, p_subscription text, p_price text, p_period_start bigint,
                              p_metadata jsonb default '{}')
returns jsonb
language sql immutable
as $$
  select jsonb_build_object(
    'id', p_id, 'object', 'invoice', 'customer', p_customer, 'status', 'paid', 'billing_reason', 'subscription_cycle',
    'hosted_invoice_url', 'https://invoice.stripe.com/i/' || p_id,
    'parent', jsonb_build_object(
      'type', 'subscription_details', 'quote_details', null,
      'subscription_details', jsonb_build_object('subscription', p_subscription, 'metadata', p_metadata)),
    'lines', jsonb_build_object('object', 'list', 'data', jsonb_build_array(jsonb_build_object(
      'id', 'il_' || substr(p_id, 4), 'object', 'line_item',
      'pricing', jsonb_build_object('type', 'price_details',
                                    'price_details', jsonb_build_object('price', p_price, 'product', 'prod_pgtap022')),
      'period', jsonb_build_object('start', p_period_start, 'end', p_period_start + 2592000)))))
$$;

-- A charge of a token pack payment, refunded up to p_refunded cents.
create function tests.charge(p_id text, p_customer text, p_payment_intent text, p_amount bigint, p_refunded bigint)
returns jsonb
language sql immutable
as $$
  select jsonb_build_object(
    'id', p_id, 'object', 'charge', 'customer', p_customer, 'payment_intent', p_payment_intent,
    'amount', p_amount, 'amount_refunded', p_refunded, 'refunded', p_refunded >= p_amount, 'currency', 'usd')
$$;

create function tests.balance(p_user uuid) returns bigint
language sql stable
as $$ select balance from public.token_balances where user_id = p_user $$;

-- ==================================================================================== fixtures
-- The Stripe price ids are configuration: set them for this test.
update public.subscription_plans set stripe_price_monthly = null, stripe_price_yearly = null;
update public.subscription_plans set stripe_price_monthly = 'price_pgtap022ProM', stripe_price_yearly = 'price_pgtap022ProY'
 where id = 'pro';
update public.subscription_plans set stripe_price_monthly = 'price_pgtap022MaxM', stripe_price_yearly = 'price_pgtap022MaxY'
 where id = 'max';

select tests.create_user('stripe-alice@example.com') as alice_id \gset
select tests.create_user('stripe-bob@example.com') as bob_id \gset
select tests.create_user('stripe-carol@example.com') as carol_id \gset
select tests.create_user('stripe-dave@example.com') as dave_id \gset
update public.users set stripe_customer_id = 'cus_pgtap022Carol' where id = :'carol_id';
update public.users set stripe_customer_id = 'cus_pgtap022Dave' where id = :'dave_id';

-- ============================================================================ an unknown event type
select is(
  tests.deliver(tests.stripe_event('evt_pgtap022_unknown', 'customer.tax_id.created', 1795000000,
                                   '{"id": "txi_1", "object": "tax_id"}')),
  'ignored', 'An event type we do not handle is ignored');
select results_eq(
  $$select type, status, attempts, processed_at is not null, payload ->> 'id'
      from private.stripe_webhook_events where id = 'evt_pgtap022_unknown'$$,
  $$values ('customer.tax_id.created'::text, 'ignored'::text, 1, true, 'evt_pgtap022_unknown'::text)$$,
  'The ignored event is recorded once with its payload, status ignored, 1 attempt');
select is(
  tests.deliver(tests.stripe_event('evt_pgtap022_unknown', 'customer.tax_id.created', 1795000000,
                                   '{"id": "txi_1", "object": "tax_id"}')),
  'duplicate', 'The same ignored event delivered again is a duplicate');
select throws_ok(
  $$select private.handle_stripe_event('{"type": "invoice.paid", "created": 1795000000}')$$,
  '22023', null, 'An event without an id is not a Stripe event (22023)');
select throws_ok(
  $$select private.handle_stripe_event('{"id": "evt_pgtap022_x", "type": "invoice.paid", "created": "yesterday"}')$$,
  '22023', null, 'An event whose created is not epoch seconds is not a Stripe event (22023)');

-- ========================================================================= a token pack purchase
select tests.stripe_event('evt_pgtap022_cs_pack', 'checkout.session.completed', 1795000010,
  jsonb_build_object(
    'id', 'cs_test_pgtap022pack', 'object', 'checkout.session', 'mode', 'payment', 'status', 'complete',
    'payment_status', 'paid', 'customer', 'cus_pgtap022Alice', 'client_reference_id', :'alice_id',
    'payment_intent', 'pi_pgtap022x', 'amount_total', 1000, 'currency', 'usd',
    'metadata', jsonb_build_object('pack_id', 'pack_1m', 'user_id', :'alice_id', 'tokens', '1000000'))) as cs_pack
\gset
select is(tests.deliver(:'cs_pack'), 'processed', 'checkout.session.completed for a paid token pack is processed');
select is(tests.balance(:'alice_id'), 1000000::bigint, 'The token pack credits its 1 000 000 tokens');
select results_eq(
  $$select reason, delta, metadata ->> 'pack_id' from public.token_transactions where reference = 'pi:pi_pgtap022x'$$,
  $$values ('token_pack_purchase'::text, 1000000::bigint, 'pack_1m'::text)$$,
  'The credit is one token_pack_purchase ledger row keyed by the payment intent');
select is((select stripe_customer_id from public.users where id = :'alice_id'), 'cus_pgtap022Alice',
  'The checkout links alice to her Stripe customer');

select is(tests.deliver(:'cs_pack'), 'duplicate', 'The same checkout event delivered again is a duplicate');
select is(tests.balance(:'alice_id'), 1000000::bigint, 'The duplicate delivery credits nothing');

select is(
  tests.deliver(tests.stripe_event('evt_pgtap022_pi_pack', 'payment_intent.succeeded', 1795000011,
    jsonb_build_object(
      'id', 'pi_pgtap022x', 'object', 'payment_intent', 'status', 'succeeded', 'amount', 1000,
      'amount_received', 1000, 'currency', 'usd', 'customer', 'cus_pgtap022Alice',
      'metadata', jsonb_build_object('pack_id', 'pack_1m', 'user_id', :'alice_id', 'tokens', '1000000')))),
  'processed', 'payment_intent.succeeded for the same payment is processed');
select is(tests.balance(:'alice_id'), 1000000::bigint,
  'payment_intent.succeeded after the checkout does not credit the pack again');
select is((select count(*)::int from public.token_transactions where user_id = :'alice_id'), 1,
  'alice has exactly one ledger row for the pack');

-- ======================================================================= a subscription checkout
select is(
  tests.deliver(tests.stripe_event('evt_pgtap022_cs_sub', 'checkout.session.completed', 1795000100,
    jsonb_build_object(
      'id', 'cs_test_pgtap022sub', 'object', 'checkout.session', 'mode', 'subscription', 'status', 'complete',
      'payment_status', 'paid', 'customer', 'cus_pgtap022Alice', 'client_reference_id', :'alice_id',
      'subscription', 'sub_pgtap022Alice', 'payment_intent', null,
      'metadata', jsonb_build_object('user_id', :'alice_id', 'plan', 'pro', 'billing_period', 'monthly')))),
  'processed', 'checkout.session.completed for a subscription is processed');
select results_eq(
  format('select plan, plan_status, stripe_subscription_id from public.users where id = %L', :'alice_id'),
  $$values ('pro'::text, 'active'::text, 'sub_pgtap022Alice'::text)$$,
  'The subscription checkout puts alice on pro, active, with her subscription id');
select results_eq(
  format('select plan_id, billing_period, status, is_current, stripe_updated_at from public.user_subscriptions
           where user_id = %L', :'alice_id'),
  $$values ('pro'::text, 'monthly'::text, 'active'::text, true, to_timestamp(1795000100))$$,
  'alice has one current, active pro subscription row stamped with the event time');

-- ================================================================ a plan change, and an older event
select is(
  tests.deliver(tests.stripe_event('evt_pgtap022_sub_upd', 'customer.subscription.updated', 1795000200,
    tests.subscription('sub_pgtap022Alice', 'cus_pgtap022Alice', 'active', 'price_pgtap022MaxM', 1795000200,
                       jsonb_build_object('user_id', :'alice_id')))),
  'processed', 'customer.subscription.updated to the max monthly price is processed');
select is((select plan from public.users where id = :'alice_id'), 'max',
  'The max monthly price switches alice to max');
select results_eq(
  format('select plan_id, billing_period, stripe_price_id, current_period_start, current_period_end,
                 stripe_updated_at
            from public.user_subscriptions where user_id = %L and is_current', :'alice_id'),
  $$values ('max'::text, 'monthly'::text, 'price_pgtap022MaxM'::text, to_timestamp(1795000200),
            to_timestamp(1795000200 + 2592000), to_timestamp(1795000200))$$,
  'The subscription row holds max, monthly, the price and the period from items.data[0]');

select is(
  tests.deliver(tests.stripe_event('evt_pgtap022_sub_old', 'customer.subscription.updated', 1795000150,
    tests.subscription('sub_pgtap022Alice', 'cus_pgtap022Alice', 'active', 'price_pgtap022ProM', 1795000150,
                       jsonb_build_object('user_id', :'alice_id'), true))),
  'processed', 'An older customer.subscription.updated delivered afterwards is acknowledged');
select is((select plan from public.users where id = :'alice_id'), 'max',
  'The older event does not switch alice back to pro');
select results_eq(
  format('select plan_id, cancel_at_period_end, stripe_updated_at from public.user_subscriptions where user_id = %L',
         :'alice_id'),
  $$values ('max'::text, false, to_timestamp(1795000200))$$,
  'The older event changes nothing on the subscription row (watermark stays at the newer event)');

-- ============================================================================= invoice allowances
select tests.stripe_event('evt_pgtap022_inv_paid', 'invoice.payment_succeeded', 1795000300,
  tests.invoice('in_pgtap022Alice1', 'cus_pgtap022Alice', 'sub_pgtap022Alice', 'price_pgtap022MaxM', 1795000300))
  as inv_paid \gset
select is(tests.deliver(:'inv_paid'), 'processed', 'invoice.payment_succeeded is processed');
select is(tests.balance(:'alice_id'), (1000000 + 25000000)::bigint,
  'invoice.payment_succeeded credits the max monthly allowance (25 000 000) once');
select results_eq(
  $$select reason, delta, metadata ->> 'plan' from public.token_transactions where reference = 'invoice:in_pgtap022Alice1'$$,
  $$values ('subscription_allowance'::text, 25000000::bigint, 'max'::text)$$,
  'The allowance is one subscription_allowance ledger row keyed by the invoice');
select is(
  tests.deliver(tests.stripe_event('evt_pgtap022_inv_paid2', 'invoice.paid', 1795000301,
    tests.invoice('in_pgtap022Alice1', 'cus_pgtap022Alice', 'sub_pgtap022Alice', 'price_pgtap022MaxM', 1795000300))),
  'processed', 'invoice.paid for the same invoice (a new event id) is processed');
select is(tests.balance(:'alice_id'), (1000000 + 25000000)::bigint,
  'A second event for the same invoice does not credit the allowance again');
select is(tests.deliver(:'inv_paid'), 'duplicate', 'The first invoice event delivered again is a duplicate');
select is(tests.balance(:'alice_id'), (1000000 + 25000000)::bigint, 'The duplicate invoice event credits nothing');
select is((select stripe_updated_at from public.user_subscriptions where stripe_subscription_id = 'sub_pgtap022Alice'),
  to_timestamp(1795000301), 'The invoice events advance the subscription''s watermark');

-- Yearly: bob's first invoice creates his subscription from the yearly price and credits twelve months.
select is(
  tests.deliver(tests.stripe_event('evt_pgtap022_inv_bob', 'invoice.payment_succeeded', 1795000350,
    tests.invoice('in_pgtap022Bob1', 'cus_pgtap022Bob', 'sub_pgtap022Bob', 'price_pgtap022ProY', 1795000350,
                  jsonb_build_object('user_id', :'bob_id')))),
  'processed', 'invoice.payment_succeeded for a yearly pro subscription is processed');
select is(tests.balance(:'bob_id'), (12 * 5000000)::bigint,
  'A yearly invoice credits twelve months of the pro allowance (60 000 000)');
select results_eq(
  format('select plan_id, billing_period, status, is_current from public.user_subscriptions where user_id = %L',
         :'bob_id'),
  $$values ('pro'::text, 'yearly'::text, 'active'::text, true)$$,
  'bob''s subscription row is pro, yearly, active and current');
select results_eq(
  format('select plan, stripe_customer_id from public.users where id = %L', :'bob_id'),
  $$values ('pro'::text, 'cus_pgtap022Bob'::text)$$,
  'bob is on pro and linked to his Stripe customer');

-- ================================================================================ payment failures
-- An OLDER failure (another invoice, before the last payment succeeded) delivered late must not mark
-- the subscription past due: the watermark protects user_subscriptions, and public.users must agree.
select is(
  tests.deliver(tests.stripe_event('evt_pgtap022_fail_old', 'invoice.payment_failed', 1795000250,
    tests.invoice('in_pgtap022Alice0', 'cus_pgtap022Alice', 'sub_pgtap022Alice', 'price_pgtap022MaxM', 1795000250))),
  'processed', 'An older invoice.payment_failed delivered late is acknowledged');
select is((select status from public.user_subscriptions where stripe_subscription_id = 'sub_pgtap022Alice'), 'active',
  'An older payment failure does not make the subscription row past_due (watermark)');
select is((select plan_status from public.users where id = :'alice_id'), 'active',
  'An older payment failure does not make alice''s plan_status past_due either (users agrees with her subscription)');

select tests.stripe_event('evt_pgtap022_fail', 'invoice.payment_failed', 1795000400,
  tests.invoice('in_pgtap022Alice2', 'cus_pgtap022Alice', 'sub_pgtap022Alice', 'price_pgtap022MaxM', 1795000400))
  as inv_failed \gset
select is(tests.deliver(:'inv_failed'), 'processed', 'invoice.payment_failed is processed');
select is((select plan_status from public.users where id = :'alice_id'), 'past_due',
  'invoice.payment_failed makes alice''s plan_status past_due');
select is((select status from public.user_subscriptions where stripe_subscription_id = 'sub_pgtap022Alice'),
  'past_due', 'invoice.payment_failed makes the subscription row past_due');
select results_eq(
  format($$select kind, data ->> 'hosted_invoice_url' from public.notifications
            where user_id = %L and dedupe_key = 'invoice_payment_failed:in_pgtap022Alice2'$$, :'alice_id'),
  $$values ('payment_failed'::text, 'https://invoice.stripe.com/i/in_pgtap022Alice2'::text)$$,
  'invoice.payment_failed notifies alice once, with the invoice link');
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
select is(
  tests.deliver(tests.stripe_event('evt_pgtap022_sub_del', 'customer.subscription.deleted', 1795000500,
    tests.subscription('sub_pgtap022Alice', 'cus_pgtap022Alice', 'canceled', 'price_pgtap022MaxM', 1795000200,
                       jsonb_build_object('user_id', :'alice_id')))),
  'processed', 'customer.subscription.deleted is processed');
select results_eq(
  format('select plan, plan_status, stripe_subscription_id from public.users where id = %L', :'alice_id'),
  $$values ('free'::text, 'active'::text, null::text)$$,
  'customer.subscription.deleted puts alice back on free');
select results_eq(
  $$select status, is_current from public.user_subscriptions where stripe_subscription_id = 'sub_pgtap022Alice'$$,
  $$values ('canceled'::text, false)$$,
  'The deleted subscription''s row is canceled and no longer current');
select is(tests.balance(:'alice_id'), (1000000 + 25000000)::bigint,
  'Cancelling keeps the tokens alice already has');
-- Stripe's final invoice of a canceled subscription (e.g. prorations) is paid after the deletion event.
select is(
  tests.deliver(tests.stripe_event('evt_pgtap022_inv_final', 'invoice.paid', 1795000510,
    tests.invoice('in_pgtap022AliceFinal', 'cus_pgtap022Alice', 'sub_pgtap022Alice', 'price_pgtap022MaxM', 1795000200)
      || '{"billing_reason": "subscription_update"}')),
  'processed', 'The final invoice of the canceled subscription, paid after its deletion, is processed');
select results_eq(
  format($$select u.plan, s.status, s.is_current from public.users u
             join public.user_subscriptions s on s.stripe_subscription_id = 'sub_pgtap022Alice' where u.id = %L$$,
         :'alice_id'),
  $$values ('free'::text, 'canceled'::text, false)$$,
  'A paid invoice of a canceled subscription does not bring it (and the max plan) back');

-- ===================================================================================== refunds
-- carol buys pack_1m (1000 cents, 1 000 000 tokens), is refunded half, then the rest.
select is(
  tests.deliver(tests.stripe_event('evt_pgtap022_pi_carol', 'payment_intent.succeeded', 1795000600,
    jsonb_build_object(
      'id', 'pi_pgtap022carol', 'object', 'payment_intent', 'status', 'succeeded', 'amount', 1000,
      'currency', 'usd', 'customer', 'cus_pgtap022Carol',
      'metadata', jsonb_build_object('pack_id', 'pack_1m', 'user_id', :'carol_id')))),
  'processed', 'carol''s token pack payment is processed');
select is(tests.balance(:'carol_id'), 1000000::bigint, 'carol is credited the pack''s 1 000 000 tokens');
-- carol also has 300 000 tokens from elsewhere: a refund takes back the pack, not those.
select is(
  (select balance_after from private.update_user_token_balance(:'carol_id', 300000, 'adjustment', 'pgtap022:carol:gift')),
  1300000::bigint, 'carol gets 300 000 more tokens from an adjustment');

select is(
  tests.deliver(tests.stripe_event('evt_pgtap022_refund_half', 'charge.refunded', 1795000610,
    tests.charge('ch_pgtap022carol', 'cus_pgtap022Carol', 'pi_pgtap022carol', 1000, 500))),
  'processed', 'charge.refunded for half the amount is processed');
select is(tests.balance(:'carol_id'), 800000::bigint, 'A half refund debits half the pack''s tokens (500 000)');
select is(
  tests.deliver(tests.stripe_event('evt_pgtap022_refund_full', 'charge.refunded', 1795000620,
    tests.charge('ch_pgtap022carol', 'cus_pgtap022Carol', 'pi_pgtap022carol', 1000, 1000))),
  'processed', 'charge.refunded for the full amount is processed');
select is(tests.balance(:'carol_id'), 300000::bigint,
  'The full refund later debits the rest of the pack, leaving carol''s other 300 000 tokens');
select is(
  tests.deliver(tests.stripe_event('evt_pgtap022_refund_full2', 'charge.refunded', 1795000621,
    tests.charge('ch_pgtap022carol', 'cus_pgtap022Carol', 'pi_pgtap022carol', 1000, 1000))),
  'processed', 'The full refund under a new event id is processed');
select results_eq(
  format($$select delta from public.token_transactions where user_id = %L and reason = 'token_pack_refund' order by id$$,
         :'carol_id'),
  $$values (-500000::bigint), (-500000::bigint)$$,
  'carol''s refunds are exactly two debits of 500 000, however often they are delivered');

-- dave buys pack_1m and spends 800 000 tokens before he is refunded.
select is(
  tests.deliver(tests.stripe_event('evt_pgtap022_pi_dave', 'payment_intent.succeeded', 1795000700,
    jsonb_build_object(
      'id', 'pi_pgtap022dave', 'object', 'payment_intent', 'status', 'succeeded', 'amount', 1000,
      'currency', 'usd', 'customer', 'cus_pgtap022Dave',
      'metadata', jsonb_build_object('pack_id', 'pack_1m', 'user_id', :'dave_id', 'tokens', '1000000')))),
  'processed', 'dave''s token pack payment is processed');
select is(
  (select balance_after from private.update_user_token_balance(:'dave_id', -800000, 'usage', 'pgtap022:dave:usage')),
  200000::bigint, 'dave spends 800 000 of his tokens');
select is(
  tests.deliver(tests.stripe_event('evt_pgtap022_refund_dave', 'charge.refunded', 1795000710,
    tests.charge('ch_pgtap022dave', 'cus_pgtap022Dave', 'pi_pgtap022dave', 1000, 500))),
  'processed', 'A half refund of a partly spent pack is processed');
select is(tests.balance(:'dave_id'), 0::bigint, 'The refund takes what is left and stops at 0');
select results_eq(
  format($$select delta, (metadata ->> 'shortfall')::bigint from public.token_transactions
            where user_id = %L and reason = 'token_pack_refund'$$, :'dave_id'),
  $$values (-200000::bigint, 300000::bigint)$$,
  'The refund debit records the 300 000 tokens it could not take back as its shortfall');
select is(
  tests.deliver(tests.stripe_event('evt_pgtap022_refund_dave_full', 'charge.refunded', 1795000720,
    tests.charge('ch_pgtap022dave', 'cus_pgtap022Dave', 'pi_pgtap022dave', 1000, 1000))),
  'processed', 'The full refund of the spent pack is processed');
select is(tests.balance(:'dave_id'), 0::bigint, 'After the full refund dave''s balance is 0, never negative');
select is(
  (select min(balance_after) from public.token_transactions where user_id = :'dave_id'),
  0::bigint, 'No ledger row of dave''s records a negative balance');

-- ====================================================================== failures and dead letters
-- erin's customer is not known yet: the invoice cannot be applied.
select tests.stripe_event('evt_pgtap022_fail_erin', 'invoice.payment_succeeded', 1795000800,
  tests.invoice('in_pgtap022Erin1', 'cus_pgtap022Erin', 'sub_pgtap022Erin', 'price_pgtap022ProM', 1795000800))
  as erin_inv \gset
select is(tests.deliver(:'erin_inv'), 'failed', 'An invoice of an unknown customer fails');
select results_eq(
  $$select status, attempts, last_error like 'PB404:%' from private.stripe_webhook_events
     where id = 'evt_pgtap022_fail_erin'$$,
  $$values ('failed'::text, 1, true)$$,
  'The failure is recorded: status failed, 1 attempt, the PB404 error');
select is((select count(*)::int from private.failed_webhook_events where event_id = 'evt_pgtap022_fail_erin'), 0,
  'One failure is not yet a dead letter');
select is(tests.deliver(:'erin_inv'), 'failed', 'The second delivery fails again');
select is((select count(*)::int from private.failed_webhook_events where event_id = 'evt_pgtap022_fail_erin'), 0,
  'Two failures are not yet a dead letter');
select is(tests.deliver(:'erin_inv'), 'failed', 'The third delivery fails again');
select results_eq(
  $$select attempts, type, payload ->> 'id', resolved_at is null, next_retry_at > now()
      from private.failed_webhook_events where event_id = 'evt_pgtap022_fail_erin'$$,
  $$values (3, 'invoice.payment_succeeded'::text, 'evt_pgtap022_fail_erin'::text, true, true)$$,
  'After the third failure the event is a dead letter with 3 attempts, its payload and a retry time');
select is(
  (select jsonb_array_length(errors) from private.failed_webhook_events where event_id = 'evt_pgtap022_fail_erin'),
  3, 'The dead letter keeps every one of the 3 errors (one per failed attempt)');
select is(tests.deliver(:'erin_inv'), 'failed', 'A fourth delivery of a dead-lettered event reports failed');
select is((select attempts from private.stripe_webhook_events where id = 'evt_pgtap022_fail_erin'), 3,
  'A delivery after the third failure does not try again (replay does)');

select tests.create_user('stripe-erin@example.com') as erin_id \gset
update public.users set stripe_customer_id = 'cus_pgtap022Erin' where id = :'erin_id';

select results_eq($$select status from private.replay_failed_webhook_event('evt_pgtap022_fail_erin')$$,
  array['processed'], 'Once the customer exists, replaying the dead letter processes it');
select is(tests.balance(:'erin_id'), 5000000::bigint, 'The replay credits erin''s pro allowance');
select results_eq(
  $$select e.status, f.resolved_at is not null, f.replay_count
      from private.stripe_webhook_events e join private.failed_webhook_events f on f.event_id = e.id
     where e.id = 'evt_pgtap022_fail_erin'$$,
  $$values ('processed'::text, true, 1)$$,
  'The replayed event is processed and its dead letter resolved');
select results_eq($$select status from private.replay_failed_webhook_event('evt_pgtap022_fail_erin')$$,
  array['duplicate'], 'Replaying it again is a duplicate');
select is(tests.balance(:'erin_id'), 5000000::bigint, 'The second replay credits nothing');
select is(tests.deliver(:'erin_inv'), 'duplicate', 'Stripe delivering it again after the replay is a duplicate');
select throws_ok($$select * from private.replay_failed_webhook_event('evt_pgtap022_nowhere')$$,
  'PB404', null, 'Replaying an event that is not a dead letter is PB404');

-- The retry job picks a dead letter once its next_retry_at has passed, not before.
select tests.stripe_event('evt_pgtap022_fail_frank', 'invoice.payment_succeeded', 1795000900,
  tests.invoice('in_pgtap022Frank1', 'cus_pgtap022Frank', 'sub_pgtap022Frank', 'price_pgtap022MaxM', 1795000900))
  as frank_inv \gset
select tests.deliver(:'frank_inv') || tests.deliver(:'frank_inv') || tests.deliver(:'frank_inv') as frank_statuses \gset
select is(:'frank_statuses'::text, 'failedfailedfailed', 'frank''s invoice fails three times');
select tests.create_user('stripe-frank@example.com') as frank_id \gset
update public.users set stripe_customer_id = 'cus_pgtap022Frank' where id = :'frank_id';

select private.retry_failed_webhook_events() as retried_early \gset
select results_eq(
  $$select replay_count, resolved_at is null from private.failed_webhook_events where event_id = 'evt_pgtap022_fail_frank'$$,
  $$values (0, true)$$,
  'The retry job leaves a dead letter alone while its next_retry_at is in the future');
update private.failed_webhook_events set next_retry_at = now() - interval '1 second'
 where event_id = 'evt_pgtap022_fail_frank';
select ok(private.retry_failed_webhook_events() >= 1, 'The retry job reports that it tried at least one event');
select results_eq(
  $$select f.replay_count, f.resolved_at is not null, e.status
      from private.failed_webhook_events f join private.stripe_webhook_events e on e.id = f.event_id
     where f.event_id = 'evt_pgtap022_fail_frank'$$,
  $$values (1, true, 'processed'::text)$$,
  'The retry job replays the dead letter whose next_retry_at has passed and resolves it');
select is(tests.balance(:'frank_id'), 25000000::bigint, 'The retried invoice credits frank''s max allowance once');

-- ====================================================================================== the audit
select results_eq(
  $$select event_id, outcome, http_status from private.webhook_audit_log
     where event_id like 'evt\_pgtap022\_%' order by id$$,
  $$select event_id,
           case status when 'duplicate' then 'duplicate' when 'failed' then 'failed' else 'accepted' end,
           case status when 'failed' then 500 else 200 end
      from tests.deliveries order by n$$,
  'webhook_audit_log has one row per handle_stripe_event call, in order, with its outcome and HTTP status');
select is((select count(*)::int from tests.deliveries), 33, 'The audit check covers the 33 deliveries of this test');
select results_eq(
  $$select outcome, http_status, reason from private.webhook_audit_log where event_id = 'evt_pgtap022_unknown' order by id$$,
  $$values ('accepted'::text, 200, 'ignored'::text), ('duplicate'::text, 200, 'duplicate'::text)$$,
  'An ignored event is audited as accepted, its redelivery as duplicate');
select results_eq(
  $$select outcome, http_status, reason like 'PB404:%', request_id, source_ip
      from private.webhook_audit_log where event_id = 'evt_pgtap022_fail_erin' order by id limit 1$$,
  $$values ('failed'::text, 500, true, 'req_evt_pgtap022_fail_erin'::text, '203.0.113.7'::inet)$$,
  'A failed delivery is audited as failed (500) with the error, the request id and the source ip');
select is(
  (select count(*)::int from private.webhook_audit_log where event_id = 'evt_pgtap022_fail_erin'),
  5, 'Replays are not deliveries: erin''s event has exactly its 5 deliveries audited');

-- ================================================================================ scheduled jobs
select results_eq(
  $$select jobname::text collate "default", schedule, active from cron.job
     where jobname in ('aie_rate_limit_cleanup', 'aie_stripe_webhook_retry') order by jobname$$,
  $$values ('aie_rate_limit_cleanup'::text, '*/10 * * * *'::text, true),
           ('aie_stripe_webhook_retry'::text, '*/5 * * * *'::text, true)$$,
  'pg_cron runs aie_rate_limit_cleanup every 10 minutes and aie_stripe_webhook_retry every 5 minutes');
select is((select command from cron.job where jobname = 'aie_stripe_webhook_retry'),
  'select private.retry_failed_webhook_events()', 'aie_stripe_webhook_retry calls private.retry_failed_webhook_events()');
select ok((select command from cron.job where jobname = 'aie_rate_limit_cleanup') ~ 'delete from private\.rate_limit_buckets',
  'aie_rate_limit_cleanup deletes expired private.rate_limit_buckets');

-- ============================================================================= who may call it
select ok(not has_function_privilege('service_role', 'private.handle_stripe_event(jsonb, text, inet)', 'EXECUTE')
          and not has_function_privilege('authenticated', 'private.handle_stripe_event(jsonb, text, inet)', 'EXECUTE')
          and not has_function_privilege('anon', 'private.handle_stripe_event(jsonb, text, inet)', 'EXECUTE'),
  'Only the database owner (the webhook''s own connection) can call private.handle_stripe_event');
select ok(has_function_privilege('service_role', 'private.replay_failed_webhook_event(text)', 'EXECUTE')
          and not has_function_privilege('authenticated', 'private.replay_failed_webhook_event(text)', 'EXECUTE')
          and not has_function_privilege('anon', 'private.replay_failed_webhook_event(text)', 'EXECUTE'),
  'service_role (the operator) is granted EXECUTE on private.replay_failed_webhook_event; anon and authenticated are not');
-- The grant must work end to end: a dead letter of a type we ignore, replayed as service_role.
insert into private.stripe_webhook_events (id, type, stripe_created_at, status, attempts, last_error, payload)
values ('evt_pgtap022_operator', 'customer.tax_id.created', to_timestamp(1795001000), 'failed', 3, 'XX000: boom',
        tests.stripe_event('evt_pgtap022_operator', 'customer.tax_id.created', 1795001000, '{"id": "txi_2"}'));
insert into private.failed_webhook_events (event_id, type, payload, attempts)
select id, type, payload, attempts from private.stripe_webhook_events where id = 'evt_pgtap022_operator';
select tests.authenticate_as_service_role();
select lives_ok($$select * from private.replay_failed_webhook_event('evt_pgtap022_operator')$$,
  'service_role (the operator) can replay a dead letter');
select tests.clear_authentication();
select is((select status from private.stripe_webhook_events where id = 'evt_pgtap022_operator'), 'ignored',
  'The operator''s replay applied the dead letter (status ignored for its type)');

select * from finish();
rollback;
