-- The Stripe webhook pipeline in SQL, fed hand-built events shaped like Stripe API version 2026-10-28
-- (epoch-seconds `created`; a subscription's current_period_* on items.data[0]; an invoice's subscription
-- under parent.subscription_details and each line's price under pricing.price_details.price, its kind under
-- parent.subscription_item_details.proration). The body reaches private.handle_stripe_event as text: one
-- that is not a storable event is rejected and audited, never raised. Each event id is applied once; each
-- effect (credit, refund, plan change, notification) once per Stripe object whatever event carries it; the
-- state left is the same whatever order the events come in (an older event never overwrites newer state,
-- invoices never touch subscriptions, a refund may come before the purchase); events of customers with no
-- user here are ignored with the reason; a failure is recorded, retried, dead-lettered after 3 attempts and
-- replayable; every delivery is audited.
begin;
\ir ../_helpers.psql
select plan(176);

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

-- Delivers a body (text, as the stripe-webhook function passes the verified request body) under request id
-- req_pgtap022_<n> and remembers the delivery: its request id, the event id the body names, and what
-- handle_stripe_event returned (tests.deliveries is what the audit section checks webhook_audit_log against).
-- A body must never make handle_stripe_event raise; if it does, the exception comes back as the status
-- ('raised <sqlstate>: …') so the test reports it instead of aborting, and nothing is remembered (nothing was
-- audited either). p_remember false: request id req_pgtap022todo_<n>, outside the audit check.
create table tests.deliveries (
  n integer primary key, request_id text not null, event_id text, status text not null, error text, reason text);
create sequence tests.delivery_n;
create function tests.deliver_body(p_body text, p_remember boolean default true) returns text
language plpgsql
as $$
declare
  v_n integer := nextval('tests.delivery_n');
  v_request_id text := case when p_remember then 'req_pgtap022_' else 'req_pgtap022todo_' end || v_n;
  v_result record;
  v_json jsonb;
begin
  begin
    select h.status, h.error, h.reason into strict v_result
      from private.handle_stripe_event(p_body, v_request_id, '203.0.113.7') h;
  exception when others then
    return 'raised ' || sqlstate || ': ' || sqlerrm;
  end;
  if p_remember then
    begin
      v_json := p_body::jsonb;
    exception when others then
      v_json := null;
    end;
    insert into tests.deliveries (n, request_id, event_id, status, error, reason)
    values (v_n, v_request_id, case when jsonb_typeof(v_json -> 'id') = 'string' then v_json ->> 'id' end,
            v_result.status, v_result.error, v_result.reason);
  end if;
  return v_result.status;
end;
$$;
create function tests.deliver(p_event jsonb) returns text
language sql
as $$ select tests.deliver_body(p_event::text) $$;

-- The audit rows of the last delivery.
create function tests.last_audit() returns table (event_id text, outcome text, http_status integer, reason text)
language sql stable
as $$
  select a.event_id, a.outcome, a.http_status, a.reason from private.webhook_audit_log a
   where a.request_id = (select d.request_id from tests.deliveries d order by d.n desc limit 1)
   order by a.id
$$;

-- A subscription object (items.data[0] carries the price and the current period).
create function tests.subscription(p_id text, p_customer text, p_status text, p_price text, p_period_start bigint,
                                   p_metadata jsonb default '{}', p_cancel_at_period_end boolean default false,
                                   p_created bigint default 1795000090)
returns jsonb
language sql immutable
as $$
  select jsonb_build_object(
    'id', p_id, 'object', 'subscription', 'customer', p_customer, 'status', p_status, 'created', p_created,
    'cancel_at_period_end', p_cancel_at_period_end, 'canceled_at', null, 'ended_at', null,
    'metadata', p_metadata,
    'items', jsonb_build_object('object', 'list', 'data', jsonb_build_array(jsonb_build_object(
      'id', 'si_' || substr(p_id, 5), 'object', 'subscription_item', 'quantity', 1,
      'price', jsonb_build_object('id', p_price, 'object', 'price', 'recurring',
                                  jsonb_build_object('interval', 'month')),
      'current_period_start', p_period_start, 'current_period_end', p_period_start + 2592000))))
$$;

-- An invoice of a subscription (parent.subscription_details) with one line of a subscription item
-- (parent.subscription_item_details): the period it bills, or a proration when p_proration.
create function tests.invoice(p_id text, p_customer text, p_subscription text, p_price text, p_period_start bigint,
                              p_metadata jsonb default '{}', p_proration boolean default false)
returns jsonb
language sql immutable
as $$
  select jsonb_build_object(
    'id', p_id, 'object', 'invoice', 'customer', p_customer, 'status', 'paid', 'billing_reason', 'subscription_cycle',
    'hosted_invoice_url', 'https://invoice.stripe.com/i/' || p_id,
    'parent', jsonb_build_object(
      'type', 'subscription_details', 'quote_details', null,
      'subscription_details', jsonb_build_object('subscription', p_subscription, 'metadata', p_metadata)),
    'lines', jsonb_build_object('object', 'list', 'has_more', false, 'data', jsonb_build_array(jsonb_build_object(
      'id', 'il_' || substr(p_id, 4), 'object', 'line_item', 'invoice', p_id,
      'description', case when p_proration then 'Remaining time on plan' else '1 × Plan' end,
      'parent', jsonb_build_object(
        'type', 'subscription_item_details', 'invoice_item_details', null,
        'subscription_item_details', jsonb_build_object(
          'invoice_item', case when p_proration then 'ii_' || substr(p_id, 4) end, 'proration', p_proration,
          'subscription', p_subscription, 'subscription_item', 'si_' || substr(p_subscription, 5))),
      'pricing', jsonb_build_object('type', 'price_details',
                                    'price_details', jsonb_build_object('price', p_price, 'product', 'prod_pgtap022')),
      'period', jsonb_build_object('start', p_period_start, 'end', p_period_start + 2592000)))))
$$;

-- A charge of a token pack payment, refunded up to p_refunded cents; its refunds list only when given
-- (since API version 2022-11-15 a charge lists its refunds only when expanded).
create function tests.charge(p_id text, p_customer text, p_payment_intent text, p_amount bigint, p_refunded bigint,
                             p_refunds jsonb default null)
returns jsonb
language sql immutable
as $$
  select jsonb_build_object(
    'id', p_id, 'object', 'charge', 'customer', p_customer, 'payment_intent', p_payment_intent,
    'amount', p_amount, 'amount_refunded', p_refunded, 'refunded', p_refunded >= p_amount, 'currency', 'usd')
    || case when p_refunds is null then '{}'::jsonb
            else jsonb_build_object('refunds', jsonb_build_object('object', 'list', 'has_more', false, 'data', p_refunds))
       end
$$;

-- A refund of a charge.
create function tests.refund(p_id text, p_charge text, p_payment_intent text, p_amount bigint, p_created bigint,
                             p_status text default 'succeeded')
returns jsonb
language sql immutable
as $$
  select jsonb_build_object(
    'id', p_id, 'object', 'refund', 'amount', p_amount, 'charge', p_charge, 'payment_intent', p_payment_intent,
    'currency', 'usd', 'created', p_created, 'status', p_status, 'reason', 'requested_by_customer', 'metadata', '{}'::jsonb)
$$;

-- A dispute of a charge.
create function tests.dispute(p_id text, p_charge text, p_payment_intent text, p_amount bigint, p_created bigint,
                              p_status text)
returns jsonb
language sql immutable
as $$
  select jsonb_build_object(
    'id', p_id, 'object', 'dispute', 'amount', p_amount, 'charge', p_charge, 'payment_intent', p_payment_intent,
    'currency', 'usd', 'created', p_created, 'status', p_status, 'reason', 'fraudulent', 'livemode', false,
    'is_charge_refundable', false, 'metadata', '{}'::jsonb)
$$;

-- A token pack payment (payment_intent.succeeded's object).
create function tests.pack_payment(p_id text, p_customer text, p_user uuid, p_amount bigint,
                                   p_amount_received bigint default null)
returns jsonb
language sql immutable
as $$
  select jsonb_build_object(
    'id', p_id, 'object', 'payment_intent', 'status', 'succeeded', 'amount', p_amount, 'currency', 'usd',
    'customer', p_customer, 'metadata', jsonb_build_object('pack_id', 'pack_1m', 'user_id', p_user))
    || case when p_amount_received is null then '{}'::jsonb else jsonb_build_object('amount_received', p_amount_received) end
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
select tests.create_user('stripe-grace@example.com') as grace_id \gset
select tests.create_user('stripe-heidi@example.com') as heidi_id \gset
select tests.create_user('stripe-erin@example.com') as erin_id \gset
select tests.create_user('stripe-frank@example.com') as frank_id \gset
update public.users set stripe_customer_id = 'cus_pgtap022Carol' where id = :'carol_id';
update public.users set stripe_customer_id = 'cus_pgtap022Dave' where id = :'dave_id';
update public.users set stripe_customer_id = 'cus_pgtap022Grace' where id = :'grace_id';
update public.users set stripe_customer_id = 'cus_pgtap022Heidi' where id = :'heidi_id';
update public.users set stripe_customer_id = 'cus_pgtap022Erin' where id = :'erin_id';
update public.users set stripe_customer_id = 'cus_pgtap022Frank' where id = :'frank_id';

-- ============================================================================ an unknown event type
select is(
  tests.deliver(tests.stripe_event('evt_pgtap022_unknown', 'customer.tax_id.created', 1795000000,
                                   '{"id": "txi_1", "object": "tax_id"}')),
  'ignored', 'An event type we do not handle is ignored');
select results_eq(
  $$select type, status, attempts, processed_at is not null, payload ->> 'id', ignored_reason
      from private.stripe_webhook_events where id = 'evt_pgtap022_unknown'$$,
  $$values ('customer.tax_id.created'::text, 'ignored'::text, 1, true, 'evt_pgtap022_unknown'::text,
            'event type customer.tax_id.created is not handled'::text)$$,
  'The ignored event is recorded once with its payload, status ignored, 1 attempt and why it was ignored');
select is(
  tests.deliver(tests.stripe_event('evt_pgtap022_unknown', 'customer.tax_id.created', 1795000000,
                                   '{"id": "txi_1", "object": "tax_id"}')),
  'duplicate', 'The same ignored event delivered again is a duplicate');
select results_eq(
  $$select status, error, reason from tests.deliveries order by n desc limit 1$$,
  $$values ('duplicate'::text, null::text, 'event type customer.tax_id.created is not handled'::text)$$,
  'The duplicate comes back with the reason the event was ignored');

-- ========================================================================= bodies that are not events
select count(*) as events_before from private.stripe_webhook_events \gset
select is(
  tests.deliver('{"id": "ch_pgtap022", "object": "event", "type": "invoice.paid", "created": 1795000000,
                  "data": {"object": {"id": "in_1"}}}'),
  'rejected', 'A body whose id is not an event id (evt_…) is rejected');
select results_eq($$select * from tests.last_audit()$$,
  $$values ('ch_pgtap022'::text, 'rejected'::text, 400, 'id is not a Stripe event id (evt_…)'::text)$$,
  'The rejection is audited once: rejected, 400, naming the problem and the id the body gave');
select is(
  tests.deliver('{"id": "evt_pgtap022_x", "type": "invoice.paid", "created": "yesterday", "data": {"object": {}}}'),
  'rejected', 'A body whose created is not epoch seconds is rejected');
select results_eq($$select * from tests.last_audit()$$,
  $$values ('evt_pgtap022_x'::text, 'rejected'::text, 400, 'created is not a time in epoch seconds'::text)$$,
  'The rejection is audited once: rejected, 400, created is not a time in epoch seconds');
select is(
  tests.deliver('{"id": "evt_pgtap022_badtype", "type": "Invoice Paid", "created": 1795000000, "data": {"object": {}}}'),
  'rejected', 'A body whose type is not a Stripe event type is rejected');
select results_eq($$select * from tests.last_audit()$$,
  $$values ('evt_pgtap022_badtype'::text, 'rejected'::text, 400, 'type is not a Stripe event type'::text)$$,
  'The rejection is audited once: rejected, 400, type is not a Stripe event type');
select is(
  tests.deliver('{"id": "evt_pgtap022_badobj", "type": "invoice.paid", "created": 1795000000, "data": {"object": "in_1"}}'),
  'rejected', 'A body whose data.object is not an object is rejected');
select results_eq($$select * from tests.last_audit()$$,
  $$values ('evt_pgtap022_badobj'::text, 'rejected'::text, 400, 'data.object is not an object'::text)$$,
  'The rejection is audited once: rejected, 400, data.object is not an object');
select is(tests.deliver('[]'), 'rejected', 'A body that is not a JSON object is rejected');
select results_eq($$select * from tests.last_audit()$$,
  $$values (null::text, 'rejected'::text, 400, 'the body is not a JSON object'::text)$$,
  'The rejection is audited once: rejected, 400, the body is not a JSON object');
-- Valid JSON that jsonb cannot hold (\u0000): passed as the raw text the webhook receives.
select is(
  tests.deliver_body('{"id":"evt_pgtap022_nul","object":"event","type":"customer.updated","created":1795000000,'
                     '"livemode":false,"data":{"object":{"id":"cus_pgtap022Nul","object":"customer","name":"a\u0000b"}}}'),
  'rejected', 'A body with \u0000 (JSON that Postgres cannot store) is rejected, not raised');
select results_eq(
  $$select event_id, outcome, http_status, reason like 'the event cannot be stored: %' from tests.last_audit()$$,
  $$values (null::text, 'rejected'::text, 400, true)$$,
  'The rejection is audited once: rejected, 400, the event cannot be stored');
select is((select error from tests.deliveries order by n desc limit 1),
  (select reason from tests.last_audit()), 'handle_stripe_event returns the problem as the error it audits');
select is((select count(*) from private.stripe_webhook_events), :'events_before'::bigint,
  'No rejected body is recorded in stripe_webhook_events');
select is((select count(*)::int from private.stripe_webhook_events
            where id in ('evt_pgtap022_x', 'evt_pgtap022_badtype', 'evt_pgtap022_badobj', 'evt_pgtap022_nul')), 0,
  'Not even a rejected body that names an event id is recorded');

-- Bodies missing a field altogether are rejected the same way (not raised, not recorded). Delivered outside the
-- audit check.
select is(tests.deliver_body('{"type": "invoice.paid", "created": 1795000000, "data": {"object": {}}}', false),
  'rejected', 'A body without an id is rejected');
select is(tests.deliver_body('{"id": "evt_pgtap022_nocreated", "type": "invoice.paid", "data": {"object": {}}}', false),
  'rejected', 'A body without created is rejected');
select is(tests.deliver_body('{"id": "evt_pgtap022_nodata", "type": "invoice.paid", "created": 1795000000}', false),
  'rejected', 'A body without data.object is rejected');

-- ========================================================================= a token pack purchase
select tests.stripe_event('evt_pgtap022_cs_pack', 'checkout.session.completed', 1795000010,
  jsonb_build_object(
    'id', 'cs_test_pgtap022pack', 'object', 'checkout.session', 'mode', 'payment', 'status', 'complete',
    'payment_status', 'paid', 'customer', 'cus_pgtap022Alice', 'client_reference_id', :'alice_id',
    'payment_intent', 'pi_pgtap022x', 'amount_total', 1000, 'currency', 'usd', 'created', 1795000005,
    'metadata', jsonb_build_object('pack_id', 'pack_1m', 'user_id', :'alice_id', 'tokens', '1000000'))) as cs_pack
\gset
select is(tests.deliver(:'cs_pack'), 'processed', 'checkout.session.completed for a paid token pack is processed');
select is(tests.balance(:'alice_id'), 1000000::bigint, 'The token pack credits its 1 000 000 tokens');
select results_eq(
  $$select reason, delta, metadata from public.token_transactions where reference = 'pi:pi_pgtap022x'$$,
  $$values ('token_pack_purchase'::text, 1000000::bigint,
            '{"pack_id": "pack_1m", "payment_intent": "pi_pgtap022x", "amount_paid": 1000}'::jsonb)$$,
  'The credit is one token_pack_purchase ledger row keyed by the payment intent, with the pack, the payment intent '
  'and the amount paid (the checkout''s amount_total)');
select is((select stripe_customer_id from public.users where id = :'alice_id'), 'cus_pgtap022Alice',
  'The checkout links alice to her Stripe customer');

select is(tests.deliver(:'cs_pack'), 'duplicate', 'The same checkout event delivered again is a duplicate');
select is(tests.balance(:'alice_id'), 1000000::bigint, 'The duplicate delivery credits nothing');

select is(
  tests.deliver(tests.stripe_event('evt_pgtap022_pi_pack', 'payment_intent.succeeded', 1795000011,
    tests.pack_payment('pi_pgtap022x', 'cus_pgtap022Alice', :'alice_id', 1000, 1000)
      || jsonb_build_object('metadata', jsonb_build_object('pack_id', 'pack_1m', 'user_id', :'alice_id',
                                                           'tokens', '1000000')))),
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
      'subscription', 'sub_pgtap022Alice', 'payment_intent', null, 'created', 1795000090,
      'metadata', jsonb_build_object('user_id', :'alice_id', 'plan', 'pro', 'billing_period', 'monthly')))),
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
select is(
  tests.deliver(tests.stripe_event('evt_pgtap022_sub_new', 'customer.subscription.created', 1795000101,
    tests.subscription('sub_pgtap022Alice', 'cus_pgtap022Alice', 'incomplete', 'price_pgtap022ProM', 1795000090,
                       jsonb_build_object('user_id', :'alice_id')))),
  'processed', 'An incomplete customer.subscription.created delivered after the paid checkout is acknowledged');
select results_eq(
  format($$select s.status, s.state_source, s.stripe_event_id, u.plan, u.plan_status
             from public.user_subscriptions s join public.users u on u.id = s.user_id where s.user_id = %L$$,
         :'alice_id'),
  $$values ('active'::text, 'checkout_session'::text, 'evt_pgtap022_cs_sub'::text, 'pro'::text, 'active'::text)$$,
  'The incomplete snapshot does not undo the paid checkout: the row stays active and alice stays on pro');

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
                 stripe_updated_at, stripe_event_id, state_source
            from public.user_subscriptions where user_id = %L and is_current', :'alice_id'),
  $$values ('max'::text, 'monthly'::text, 'price_pgtap022MaxM'::text, to_timestamp(1795000200),
            to_timestamp(1795000200 + 2592000), to_timestamp(1795000200), 'evt_pgtap022_sub_upd'::text,
            'subscription'::text)$$,
  'The subscription row holds max, monthly, the price and the period from items.data[0], stamped with the event');

select is(
  tests.deliver(tests.stripe_event('evt_pgtap022_sub_old', 'customer.subscription.updated', 1795000150,
    tests.subscription('sub_pgtap022Alice', 'cus_pgtap022Alice', 'active', 'price_pgtap022ProM', 1795000150,
                       jsonb_build_object('user_id', :'alice_id'), true))),
  'processed', 'An older customer.subscription.updated delivered afterwards is acknowledged');
select is((select plan from public.users where id = :'alice_id'), 'max',
  'The older event does not switch alice back to pro');
select results_eq(
  format('select plan_id, cancel_at_period_end, stripe_updated_at, stripe_event_id
            from public.user_subscriptions where user_id = %L', :'alice_id'),
  $$values ('max'::text, false, to_timestamp(1795000200), 'evt_pgtap022_sub_upd'::text)$$,
  'The older event changes nothing on the subscription row (it keeps the newer event''s state)');

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

select is(
  tests.deliver(tests.stripe_event('evt_pgtap022_sub_pastdue', 'customer.subscription.updated', 1795000410,
    tests.subscription('sub_pgtap022Alice', 'cus_pgtap022Alice', 'past_due', 'price_pgtap022MaxM', 1795000200,
                       jsonb_build_object('user_id', :'alice_id')))),
  'processed', 'customer.subscription.updated with status past_due is processed');
select results_eq(
  format($$select s.status, s.is_current, u.plan, u.plan_status, u.stripe_subscription_id
             from public.user_subscriptions s join public.users u on u.id = s.user_id
            where s.stripe_subscription_id = 'sub_pgtap022Alice' and u.id = %L$$, :'alice_id'),
  $$values ('past_due'::text, true, 'max'::text, 'past_due'::text, 'sub_pgtap022Alice'::text)$$,
  'past_due makes the subscription row and alice''s plan_status past_due; she keeps max during the retries');
select is(
  tests.deliver(tests.stripe_event('evt_pgtap022_sub_active_old', 'customer.subscription.updated', 1795000405,
    tests.subscription('sub_pgtap022Alice', 'cus_pgtap022Alice', 'active', 'price_pgtap022MaxM', 1795000200,
                       jsonb_build_object('user_id', :'alice_id')))),
  'processed', 'An older customer.subscription.updated (active) delivered after the past_due one is acknowledged');
select results_eq(
  format($$select s.status, s.stripe_event_id, u.plan_status
             from public.user_subscriptions s join public.users u on u.id = s.user_id
            where s.stripe_subscription_id = 'sub_pgtap022Alice' and u.id = %L$$, :'alice_id'),
  $$values ('past_due'::text, 'evt_pgtap022_sub_pastdue'::text, 'past_due'::text)$$,
  'The older event does not undo past_due, on the row or on alice''s plan_status');

-- =========================================================================== cancellation
select is(
  tests.deliver(tests.stripe_event('evt_pgtap022_sub_del', 'customer.subscription.deleted', 1795000500,
    tests.subscription('sub_pgtap022Alice', 'cus_pgtap022Alice', 'canceled', 'price_pgtap022MaxM', 1795000200,
                       jsonb_build_object('user_id', :'alice_id')))),
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

-- ===================================================================================== refunds
-- carol buys pack_1m for 999 cents (a discounted 1000) and has 300 000 tokens from elsewhere: her refunds take
-- back the pack, each its share rounded down, and the rounding with the last of the money, never those.
select is(
  tests.deliver(tests.stripe_event('evt_pgtap022_pi_carol', 'payment_intent.succeeded', 1795000600,
    tests.pack_payment('pi_pgtap022carol', 'cus_pgtap022Carol', :'carol_id', 999))),
  'processed', 'carol''s token pack payment is processed');
select results_eq(
  $$select delta, metadata from public.token_transactions where reference = 'pi:pi_pgtap022carol'$$,
  $$values (1000000::bigint, '{"pack_id": "pack_1m", "payment_intent": "pi_pgtap022carol", "amount_paid": 999}'::jsonb)$$,
  'carol is credited the pack''s 1 000 000 tokens, recording the 999 cents paid (the payment intent''s amount)');
select is(
  (select balance_after from private.update_user_token_balance(:'carol_id', 300000, 'adjustment', 'pgtap022:carol:gift')),
  1300000::bigint, 'carol gets 300 000 more tokens from an adjustment');

select is(
  tests.deliver(tests.stripe_event('evt_pgtap022_charge_carol', 'charge.refunded', 1795000605,
    tests.charge('ch_pgtap022carol', 'cus_pgtap022Carol', 'pi_pgtap022carol', 999, 333))),
  'ignored', 'charge.refunded whose charge lists no refunds is ignored');
select results_eq(
  $$select status, ignored_reason from private.stripe_webhook_events where id = 'evt_pgtap022_charge_carol'$$,
  $$values ('ignored'::text, 'the charge lists no refunds: each refund is applied from its refund.* events'::text)$$,
  'It is recorded as ignored, with the reason');
select is(tests.balance(:'carol_id'), 1300000::bigint, 'charge.refunded without its refunds debits nothing');

select is(
  tests.deliver(tests.stripe_event('evt_pgtap022_refund_carol1', 'refund.created', 1795000610,
    tests.refund('re_pgtap022carol1', 'ch_pgtap022carol', 'pi_pgtap022carol', 333, 1795000610))),
  'processed', 'refund.created for a third of the amount is processed');
select is(tests.balance(:'carol_id'), (1300000 - 333333)::bigint,
  'A refund of 333 of 999 cents debits floor(1 000 000 × 333 / 999) = 333 333 tokens');
select is(
  tests.deliver(tests.stripe_event('evt_pgtap022_charge_carol2', 'charge.refunded', 1795000620,
    tests.charge('ch_pgtap022carol', 'cus_pgtap022Carol', 'pi_pgtap022carol', 999, 999, jsonb_build_array(
      tests.refund('re_pgtap022carol1', 'ch_pgtap022carol', 'pi_pgtap022carol', 333, 1795000610),
      tests.refund('re_pgtap022carol2', 'ch_pgtap022carol', 'pi_pgtap022carol', 666, 1795000620))))),
  'processed', 'charge.refunded listing both refunds (the charge fully refunded) is processed');
select is(tests.balance(:'carol_id'), 300000::bigint,
  'The rest of the pack is debited, leaving carol''s other 300 000 tokens');
select is(
  tests.deliver(tests.stripe_event('evt_pgtap022_refund_carol2', 'refund.updated', 1795000630,
    tests.refund('re_pgtap022carol2', 'ch_pgtap022carol', 'pi_pgtap022carol', 666, 1795000620))),
  'processed', 'refund.updated of the second refund is processed');
select results_eq(
  format($$select reference, delta from public.token_transactions
            where user_id = %L and reason = 'token_pack_refund' order by id$$, :'carol_id'),
  $$values ('refund:re_pgtap022carol1'::text, -333333::bigint), ('refund:re_pgtap022carol2'::text, -666666::bigint),
           ('refund_rounding:pi_pgtap022carol'::text, -1::bigint)$$,
  'carol''s refunds are one debit per refund and the rounding remainder once, however often they are delivered');

-- dave buys pack_1m and spends 800 000 tokens before he is refunded.
select is(
  tests.deliver(tests.stripe_event('evt_pgtap022_pi_dave', 'payment_intent.succeeded', 1795000700,
    tests.pack_payment('pi_pgtap022dave', 'cus_pgtap022Dave', :'dave_id', 1000, 1000))),
  'processed', 'dave''s token pack payment is processed');
select is(
  (select balance_after from private.update_user_token_balance(:'dave_id', -800000, 'usage', 'pgtap022:dave:usage')),
  200000::bigint, 'dave spends 800 000 of his tokens');
select is(
  tests.deliver(tests.stripe_event('evt_pgtap022_refund_dave1', 'refund.created', 1795000710,
    tests.refund('re_pgtap022dave1', 'ch_pgtap022dave', 'pi_pgtap022dave', 500, 1795000710))),
  'processed', 'A half refund of a partly spent pack is processed');
select is(tests.balance(:'dave_id'), 0::bigint, 'The refund takes what is left and stops at 0');
select is(
  (select balance_after from private.update_user_token_balance(:'dave_id', 100000, 'adjustment', 'pgtap022:dave:gift')),
  100000::bigint, 'dave then gets 100 000 tokens from an adjustment');
-- The same refund again (refund.updated), now that the balance has changed: it was applied once, so nothing
-- is recomputed (a new debit of the 100 000 now there would clash with the recorded one, PB409).
select is(
  tests.deliver(tests.stripe_event('evt_pgtap022_refund_dave1b', 'refund.updated', 1795000715,
    tests.refund('re_pgtap022dave1', 'ch_pgtap022dave', 'pi_pgtap022dave', 500, 1795000710))),
  'processed', 'refund.updated of the same refund after the balance changed is processed');
select results_eq(
  $$select d.status, d.error, e.last_error from tests.deliveries d join private.stripe_webhook_events e on e.id = d.event_id
     where d.event_id = 'evt_pgtap022_refund_dave1b'$$,
  $$values ('processed'::text, null::text, null::text)$$,
  'The repeated refund raises no error (no PB409)');
select results_eq(
  format($$select reference, delta from public.token_transactions where user_id = %L and reason = 'token_pack_refund'$$,
         :'dave_id'),
  $$values ('refund:re_pgtap022dave1'::text, -200000::bigint)$$,
  'The repeated refund adds no ledger row');
select is(tests.balance(:'dave_id'), 100000::bigint, 'The repeated refund leaves dave''s new tokens alone');
select is(
  tests.deliver(tests.stripe_event('evt_pgtap022_refund_dave2', 'refund.created', 1795000720,
    tests.refund('re_pgtap022dave2', 'ch_pgtap022dave', 'pi_pgtap022dave', 500, 1795000720))),
  'processed', 'The refund of the other half of the spent pack is processed');
select is(tests.balance(:'dave_id'), 0::bigint, 'After the full refund dave''s balance is 0, never negative');
select results_eq(
  format($$select reference, delta, (metadata ->> 'shortfall')::bigint from public.token_transactions
            where user_id = %L and reason = 'token_pack_refund' order by id$$, :'dave_id'),
  $$values ('refund:re_pgtap022dave1'::text, -200000::bigint, 300000::bigint),
           ('refund:re_pgtap022dave2'::text, -100000::bigint, 400000::bigint)$$,
  'Each refund debit records the tokens it could not take back (of its 500 000 share) as its shortfall');
select is(
  (select min(balance_after) from public.token_transactions where user_id = :'dave_id'),
  0::bigint, 'No ledger row of dave''s records a negative balance');

-- ========================================================================= a refund before the purchase
-- grace's refund.created is delivered before the payment it refunds: it waits until the credit lands.
select is(
  tests.deliver(tests.stripe_event('evt_pgtap022_refund_grace', 'refund.created', 1795000760,
    tests.refund('re_pgtap022grace', 'ch_pgtap022grace', 'pi_pgtap022grace', 400, 1795000760))),
  'processed', 'A refund of a payment not credited yet is processed');
select is((select count(*)::int from public.token_transactions where user_id = :'grace_id'), 0,
  'The early refund debits nothing yet');
select results_eq(
  $$select kind, payment_intent_id, charge_id, amount, status from private.stripe_payment_reversals
     where id = 're_pgtap022grace'$$,
  $$values ('refund'::text, 'pi_pgtap022grace'::text, 'ch_pgtap022grace'::text, 400::bigint, 'succeeded'::text)$$,
  'The early refund is kept by its id, with its payment intent, charge, amount and status');
select is(
  tests.deliver(tests.stripe_event('evt_pgtap022_cs_grace', 'checkout.session.completed', 1795000750,
    jsonb_build_object(
      'id', 'cs_test_pgtap022grace', 'object', 'checkout.session', 'mode', 'payment', 'status', 'complete',
      'payment_status', 'paid', 'customer', 'cus_pgtap022Grace', 'client_reference_id', :'grace_id',
      'payment_intent', 'pi_pgtap022grace', 'amount_total', 1000, 'currency', 'usd', 'created', 1795000745,
      'metadata', jsonb_build_object('pack_id', 'pack_1m', 'user_id', :'grace_id')))),
  'processed', 'The purchase, delivered after its refund, is processed');
select results_eq(
  format('select reason, reference, delta from public.token_transactions where user_id = %L order by id', :'grace_id'),
  $$values ('token_pack_purchase'::text, 'pi:pi_pgtap022grace'::text, 1000000::bigint),
           ('token_pack_refund'::text, 'refund:re_pgtap022grace'::text, -400000::bigint)$$,
  'The credit lands and the waiting refund takes back its share (400 of 1000 cents: 400 000 tokens) right after');
select is(
  tests.deliver(tests.stripe_event('evt_pgtap022_pi_grace', 'payment_intent.succeeded', 1795000751,
    tests.pack_payment('pi_pgtap022grace', 'cus_pgtap022Grace', :'grace_id', 1000, 1000))),
  'processed', 'payment_intent.succeeded of grace''s payment is processed');
select is(tests.balance(:'grace_id'), 600000::bigint,
  'grace ends with 600 000 tokens: the pack once, less the refund once');

-- ================================================================================ a dispute
select is(
  tests.deliver(tests.stripe_event('evt_pgtap022_pi_heidi', 'payment_intent.succeeded', 1795000780,
    tests.pack_payment('pi_pgtap022heidi', 'cus_pgtap022Heidi', :'heidi_id', 1000, 1000))),
  'processed', 'heidi''s token pack payment is processed');
select is(
  tests.deliver(tests.stripe_event('evt_pgtap022_dispute_open', 'charge.dispute.created', 1795000790,
    tests.dispute('dp_pgtap022heidi', 'ch_pgtap022heidi', 'pi_pgtap022heidi', 1000, 1795000790, 'needs_response'))),
  'processed', 'charge.dispute.created (needs_response) is processed');
select results_eq(
  format('select reason, reference, delta from public.token_transactions where user_id = %L and delta < 0', :'heidi_id'),
  $$values ('token_pack_dispute'::text, 'dispute:dp_pgtap022heidi'::text, -1000000::bigint)$$,
  'A dispute of the whole payment takes the pack back (token_pack_dispute, reference dispute:<id>)');
select is(
  tests.deliver(tests.stripe_event('evt_pgtap022_dispute_won', 'charge.dispute.closed', 1795000800,
    tests.dispute('dp_pgtap022heidi', 'ch_pgtap022heidi', 'pi_pgtap022heidi', 1000, 1795000790, 'won'))),
  'processed', 'charge.dispute.closed (won) is processed');
select results_eq(
  format($$select reason, reference, delta from public.token_transactions
            where user_id = %L and reason = 'token_pack_reinstated'$$, :'heidi_id'),
  $$values ('token_pack_reinstated'::text, 'reinstated:dispute:dp_pgtap022heidi'::text, 1000000::bigint)$$,
  'A won dispute gives the pack back (token_pack_reinstated, reference reinstated:dispute:<id>)');
select is(
  tests.deliver(tests.stripe_event('evt_pgtap022_dispute_review', 'charge.dispute.updated', 1795000795,
    tests.dispute('dp_pgtap022heidi', 'ch_pgtap022heidi', 'pi_pgtap022heidi', 1000, 1795000790, 'under_review'))),
  'processed', 'An older charge.dispute.updated (under_review) delivered after the win is acknowledged');
select is(
  tests.deliver(tests.stripe_event('evt_pgtap022_dispute_funds', 'charge.dispute.funds_reinstated', 1795000801,
    tests.dispute('dp_pgtap022heidi', 'ch_pgtap022heidi', 'pi_pgtap022heidi', 1000, 1795000790, 'won'))),
  'processed', 'charge.dispute.funds_reinstated of the won dispute is processed');
select results_eq(
  format('select count(*)::int, sum(delta) from public.token_transactions where user_id = %L', :'heidi_id'),
  $$values (3, 1000000::numeric)$$,
  'Neither the older event nor the repeat takes or gives anything again: heidi has her pack');
select is((select status from private.stripe_payment_reversals where id = 'dp_pgtap022heidi'), 'won',
  'The dispute is kept in its newest state (won)');

-- A refund that fails gives back what it took.
select is(
  tests.deliver(tests.stripe_event('evt_pgtap022_refund_heidi', 'refund.created', 1795000810,
    tests.refund('re_pgtap022heidi', 'ch_pgtap022heidi', 'pi_pgtap022heidi', 500, 1795000810, 'pending'))),
  'processed', 'A pending refund of half of heidi''s payment is processed');
select is(tests.balance(:'heidi_id'), 500000::bigint, 'A pending refund takes its share (500 000) already');
select is(
  tests.deliver(tests.stripe_event('evt_pgtap022_refund_heidi_failed', 'refund.failed', 1795000820,
    tests.refund('re_pgtap022heidi', 'ch_pgtap022heidi', 'pi_pgtap022heidi', 500, 1795000810, 'failed'))),
  'processed', 'refund.failed is processed');
select results_eq(
  format($$select reference, delta from public.token_transactions
            where user_id = %L and reference like '%%re\_pgtap022heidi' order by id$$, :'heidi_id'),
  $$values ('refund:re_pgtap022heidi'::text, -500000::bigint),
           ('reinstated:refund:re_pgtap022heidi'::text, 500000::bigint)$$,
  'The failed refund gives its 500 000 tokens back, once (reinstated:refund:<id>)');
select is(tests.balance(:'heidi_id'), 1000000::bigint, 'heidi is back to her pack''s 1 000 000 tokens');

-- ====================================================================== failures and dead letters
-- erin's invoice bills a price no plan is configured for: it cannot be applied.
select tests.stripe_event('evt_pgtap022_fail_erin', 'invoice.payment_succeeded', 1795000900,
  tests.invoice('in_pgtap022Erin1', 'cus_pgtap022Erin', 'sub_pgtap022Erin', 'price_pgtap022Unknown', 1795000900))
  as erin_inv \gset
select is(tests.deliver(:'erin_inv'), 'failed', 'An invoice billing an unconfigured price fails');
select results_eq(
  $$select status, attempts, last_error like 'PB422:%price\_pgtap022Unknown%' from private.stripe_webhook_events
     where id = 'evt_pgtap022_fail_erin'$$,
  $$values ('failed'::text, 1, true)$$,
  'The failure is recorded: status failed, 1 attempt, the PB422 error naming the price');
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
select is(tests.balance(:'erin_id'), 0::bigint, 'The failed invoice credits nothing');

update public.subscription_plans set stripe_price_yearly = 'price_pgtap022Unknown' where id = 'max';

select results_eq($$select status, error, reason from private.replay_failed_webhook_event('evt_pgtap022_fail_erin')$$,
  $$values ('processed'::text, null::text, null::text)$$,
  'Once the price is configured (max, yearly), replaying the dead letter processes it');
select is(tests.balance(:'erin_id'), (12 * 25000000)::bigint,
  'The replay credits erin twelve months of the max allowance (300 000 000), once');
select results_eq(
  $$select e.status, e.last_error, f.resolved_at is not null, f.replay_count
      from private.stripe_webhook_events e join private.failed_webhook_events f on f.event_id = e.id
     where e.id = 'evt_pgtap022_fail_erin'$$,
  $$values ('processed'::text, null::text, true, 1)$$,
  'The replayed event is processed and its dead letter resolved');
select results_eq($$select status from private.replay_failed_webhook_event('evt_pgtap022_fail_erin')$$,
  array['duplicate'], 'Replaying it again is a duplicate');
select is(tests.balance(:'erin_id'), (12 * 25000000)::bigint, 'The second replay credits nothing');
select is(tests.deliver(:'erin_inv'), 'duplicate', 'Stripe delivering it again after the replay is a duplicate');
select is((select count(*)::int from public.token_transactions where user_id = :'erin_id'), 1,
  'erin has exactly one ledger row for the invoice');
select throws_ok($$select * from private.replay_failed_webhook_event('evt_pgtap022_nowhere')$$,
  'PB404', null, 'Replaying an event that is not a dead letter is PB404');

-- A customer with no user here (another app on the same Stripe account, a deleted user) is not a failure.
select is(
  tests.deliver(tests.stripe_event('evt_pgtap022_nobody', 'invoice.payment_succeeded', 1795000950,
    tests.invoice('in_pgtap022Nobody1', 'cus_pgtap022Nobody', 'sub_pgtap022Nobody', 'price_pgtap022ProM', 1795000950))),
  'ignored', 'An invoice of a Stripe customer with no user here is ignored, not failed');
select results_eq(
  $$select status, attempts, ignored_reason, last_error from private.stripe_webhook_events where id = 'evt_pgtap022_nobody'$$,
  $$values ('ignored'::text, 1, 'no user here for Stripe customer cus_pgtap022Nobody'::text, null::text)$$,
  'It is recorded as ignored after one attempt, with the reason and no error');
select is((select count(*)::int from private.failed_webhook_events where event_id = 'evt_pgtap022_nobody'), 0,
  'It never becomes a dead letter');
select is((select count(*)::int from public.token_transactions where reference = 'invoice:in_pgtap022Nobody1'), 0,
  'It credits nobody');
select is(
  tests.deliver(tests.stripe_event('evt_pgtap022_ghost', 'customer.subscription.updated', 1795000960,
    tests.subscription('sub_pgtap022Ghost', 'cus_pgtap022Ghost', 'active', 'price_pgtap022ProM', 1795000960,
                       jsonb_build_object('user_id', extensions.gen_random_uuid())))),
  'ignored', 'A subscription event whose metadata names a user that does not exist (and an unknown customer) is ignored');
select results_eq(
  $$select e.status, e.ignored_reason, (select count(*)::int from public.user_subscriptions
                                         where stripe_subscription_id = 'sub_pgtap022Ghost')
      from private.stripe_webhook_events e where e.id = 'evt_pgtap022_ghost'$$,
  $$values ('ignored'::text, 'no user here for Stripe customer cus_pgtap022Ghost'::text, 0)$$,
  'It is recorded as ignored with the reason, and no subscription row is written');

-- The retry job picks a dead letter once its next_retry_at has passed, not before.
select tests.stripe_event('evt_pgtap022_fail_frank', 'invoice.payment_succeeded', 1795001000,
  tests.invoice('in_pgtap022Frank1', 'cus_pgtap022Frank', 'sub_pgtap022Frank', 'price_pgtap022Unknown2', 1795001000))
  as frank_inv \gset
select tests.deliver(:'frank_inv') || tests.deliver(:'frank_inv') || tests.deliver(:'frank_inv') as frank_statuses \gset
select is(:'frank_statuses'::text, 'failedfailedfailed', 'frank''s invoice of an unconfigured price fails three times');
select is((select count(*)::int from private.failed_webhook_events where event_id = 'evt_pgtap022_fail_frank'), 1,
  'frank''s invoice is a dead letter');
update public.subscription_plans set stripe_price_monthly = 'price_pgtap022Unknown2' where id = 'max';

select private.retry_failed_webhook_events() as retried_early \gset
select results_eq(
  $$select replay_count, resolved_at is null from private.failed_webhook_events where event_id = 'evt_pgtap022_fail_frank'$$,
  $$values (0, true)$$,
  'The retry job leaves a dead letter alone while its next_retry_at is in the future');
select is(tests.balance(:'frank_id'), 0::bigint, 'Nothing is credited before the retry');
update private.failed_webhook_events set next_retry_at = now() - interval '1 second'
 where event_id = 'evt_pgtap022_fail_frank';
select ok(private.retry_failed_webhook_events() >= 1, 'The retry job reports that it tried at least one event');
select results_eq(
  $$select f.replay_count, f.resolved_at is not null, e.status
      from private.failed_webhook_events f join private.stripe_webhook_events e on e.id = f.event_id
     where f.event_id = 'evt_pgtap022_fail_frank'$$,
  $$values (1, true, 'processed'::text)$$,
  'The retry job replays the dead letter whose next_retry_at has passed and resolves it');
select is(tests.balance(:'frank_id'), 25000000::bigint,
  'The retried invoice credits frank''s max allowance (the price now configured as max monthly) once');
select private.retry_failed_webhook_events() as retried_again \gset
select is(tests.balance(:'frank_id'), 25000000::bigint, 'A later retry run credits frank nothing more');

-- ====================================================================================== the audit
select results_eq(
  $$select request_id, event_id, outcome, http_status, reason from private.webhook_audit_log
     where request_id like 'req\_pgtap022\_%' order by id$$,
  $$select request_id, event_id,
           case status when 'rejected' then 'rejected' when 'duplicate' then 'duplicate'
                       when 'failed' then 'failed' else 'accepted' end,
           case status when 'rejected' then 400 when 'failed' then 500 else 200 end,
           coalesce(error, status || coalesce(': ' || reason, ''))
      from tests.deliveries order by n$$,
  'webhook_audit_log has one row per handle_stripe_event call, in order, with its event, outcome, HTTP status and '
  'reason (the error, else the status and why)');
select results_eq(
  $$select status, count(*)::int from tests.deliveries group by status order by status$$,
  $$values ('duplicate'::text, 5), ('failed'::text, 7), ('ignored'::text, 5), ('processed'::text, 33),
           ('rejected'::text, 6)$$,
  'The audit check covers the 56 deliveries of this test: 33 processed, 5 ignored, 5 duplicates, 7 failures, 6 rejections');
select results_eq(
  $$select outcome, http_status, reason from private.webhook_audit_log where event_id = 'evt_pgtap022_unknown' order by id$$,
  $$values ('accepted'::text, 200, 'ignored: event type customer.tax_id.created is not handled'::text),
           ('duplicate'::text, 200, 'duplicate: event type customer.tax_id.created is not handled'::text)$$,
  'An ignored event is audited as accepted with its reason, its redelivery as a duplicate with the same reason');
select results_eq(
  $$select outcome, http_status, reason from private.webhook_audit_log where event_id = 'evt_pgtap022_cs_pack' order by id$$,
  $$values ('accepted'::text, 200, 'processed'::text), ('duplicate'::text, 200, 'duplicate'::text)$$,
  'A processed event is audited as accepted (processed), its redelivery as a plain duplicate');
select results_eq(
  $$select outcome, http_status, reason like 'PB422:%', request_id like 'req\_pgtap022\_%', source_ip
      from private.webhook_audit_log where event_id = 'evt_pgtap022_fail_erin' order by id limit 1$$,
  $$values ('failed'::text, 500, true, true, '203.0.113.7'::inet)$$,
  'A failed delivery is audited as failed (500) with the error, the request id and the source ip');
select is(
  (select count(*)::int from private.webhook_audit_log where event_id = 'evt_pgtap022_fail_erin'),
  5, 'Replays are not deliveries: erin''s event has exactly its 5 deliveries audited');

-- ================================================================================ scheduled jobs
select results_eq(
  $$select jobname::text collate "default", schedule, active from cron.job
     where jobname in ('aie_rate_limit_cleanup', 'aie_stripe_webhook_retry', 'aie_cron_history_purge') order by jobname$$,
  $$values ('aie_cron_history_purge'::text, '17 3 * * *'::text, true),
           ('aie_rate_limit_cleanup'::text, '*/10 * * * *'::text, true),
           ('aie_stripe_webhook_retry'::text, '*/5 * * * *'::text, true)$$,
  'pg_cron runs aie_cron_history_purge daily at 03:17, aie_rate_limit_cleanup every 10 minutes and '
  'aie_stripe_webhook_retry every 5 minutes');
select is((select command from cron.job where jobname = 'aie_stripe_webhook_retry'),
  'select private.retry_failed_webhook_events()', 'aie_stripe_webhook_retry calls private.retry_failed_webhook_events()');
select ok((select command from cron.job where jobname = 'aie_rate_limit_cleanup') ~ 'delete from private\.rate_limit_buckets',
  'aie_rate_limit_cleanup deletes expired private.rate_limit_buckets');
select is((select command from cron.job where jobname = 'aie_cron_history_purge'),
  'select private.purge_cron_history()', 'aie_cron_history_purge calls private.purge_cron_history()');

-- ================================================================================ cron history
-- Clear whatever history is already older than 7 days, so that only this test's rows count.
select private.purge_cron_history() as purged_before \gset
select jobid as purge_jobid from cron.job where jobname = 'aie_cron_history_purge' \gset
select nextval('cron.runid_seq') as old_runid \gset
select nextval('cron.runid_seq') as recent_runid \gset
insert into cron.job_run_details (jobid, runid, job_pid, database, username, command, status, return_message,
                                  start_time, end_time)
values (:purge_jobid, :old_runid, 1, current_database(), current_user, 'select private.purge_cron_history()',
        'succeeded', '1 row', now() - interval '8 days 1 second', now() - interval '8 days'),
       (:purge_jobid, :recent_runid, 1, current_database(), current_user, 'select private.purge_cron_history()',
        'succeeded', '1 row', now() - interval '1 day 1 second', now() - interval '1 day');
select is(private.purge_cron_history(), 1, 'private.purge_cron_history() deletes one row: the run that ended 8 days ago');
select results_eq(
  format('select runid from cron.job_run_details where runid in (%s, %s)', :old_runid, :recent_runid),
  format('values (%s::bigint)', :recent_runid),
  'The run older than 7 days is gone; the run of a day ago is kept');
select is(private.purge_cron_history(interval '12 hours'), 1,
  'With a shorter period to keep, private.purge_cron_history(interval) deletes the run of a day ago too');

-- ============================================================================= who may call it
select hasnt_function('private', 'handle_stripe_event', array['jsonb', 'text', 'inet'],
  'private.handle_stripe_event no longer takes the body as jsonb');
select ok(not has_function_privilege('service_role', 'private.handle_stripe_event(text, text, inet)', 'EXECUTE')
          and not has_function_privilege('authenticated', 'private.handle_stripe_event(text, text, inet)', 'EXECUTE')
          and not has_function_privilege('anon', 'private.handle_stripe_event(text, text, inet)', 'EXECUTE'),
  'Only the database owner (the webhook''s own connection) can call private.handle_stripe_event');
select ok(not has_function_privilege('service_role', 'private.process_stripe_event(text, boolean)', 'EXECUTE')
          and not has_function_privilege('authenticated', 'private.process_stripe_event(text, boolean)', 'EXECUTE')
          and not has_function_privilege('anon', 'private.process_stripe_event(text, boolean)', 'EXECUTE')
          and not has_function_privilege('service_role', 'private.purge_cron_history(interval)', 'EXECUTE')
          and not has_function_privilege('authenticated', 'private.purge_cron_history(interval)', 'EXECUTE')
          and not has_function_privilege('anon', 'private.purge_cron_history(interval)', 'EXECUTE'),
  'Nor can the API roles call private.process_stripe_event or private.purge_cron_history');
select ok(has_function_privilege('service_role', 'private.replay_failed_webhook_event(text)', 'EXECUTE')
          and not has_function_privilege('authenticated', 'private.replay_failed_webhook_event(text)', 'EXECUTE')
          and not has_function_privilege('anon', 'private.replay_failed_webhook_event(text)', 'EXECUTE'),
  'service_role (the operator) is granted EXECUTE on private.replay_failed_webhook_event; anon and authenticated are not');
-- The grant must work end to end: a dead letter of a type we ignore, replayed as service_role.
insert into private.stripe_webhook_events (id, type, stripe_created_at, status, attempts, last_error, payload)
values ('evt_pgtap022_operator', 'customer.tax_id.created', to_timestamp(1795001100), 'failed', 3, 'XX000: boom',
        tests.stripe_event('evt_pgtap022_operator', 'customer.tax_id.created', 1795001100, '{"id": "txi_2"}'));
insert into private.failed_webhook_events (event_id, type, payload, attempts)
select id, type, payload, attempts from private.stripe_webhook_events where id = 'evt_pgtap022_operator';
select tests.authenticate_as_service_role();
select results_eq($$select status, error, reason from private.replay_failed_webhook_event('evt_pgtap022_operator')$$,
  $$values ('ignored'::text, null::text, 'event type customer.tax_id.created is not handled'::text)$$,
  'service_role (the operator) can replay a dead letter, and learns why it changed nothing');
select tests.clear_authentication();
select results_eq(
  $$select e.status, e.ignored_reason, f.resolved_at is not null
      from private.stripe_webhook_events e join private.failed_webhook_events f on f.event_id = e.id
     where e.id = 'evt_pgtap022_operator'$$,
  $$values ('ignored'::text, 'event type customer.tax_id.created is not handled'::text, true)$$,
  'The operator''s replay applied the dead letter (ignored for its type, with the reason) and resolved it');

select * from finish();
rollback;
