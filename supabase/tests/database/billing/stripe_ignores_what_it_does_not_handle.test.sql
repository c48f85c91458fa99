-- Stripe events the webhook does not apply are ignored, not failed, and say why: an event type it does not handle
-- (its redelivery a duplicate with the same reason), and events of a Stripe customer with no user here (another app
-- on the same account, a deleted user), which never become dead letters, credit nobody and write no subscription.
begin;
\ir ../../_helpers.psql
\ir ../../_fixtures/billing.psql
select plan(13);

select * from tests.create_stripe_fixtures() \gset

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

select results_eq(
  $$select outcome, http_status, reason from private.webhook_audit_log where event_id = 'evt_pgtap022_unknown' order by id$$,
  $$values ('accepted'::text, 200, 'ignored: event type customer.tax_id.created is not handled'::text),
           ('duplicate'::text, 200, 'duplicate: event type customer.tax_id.created is not handled'::text)$$,
  'An ignored event is audited as accepted with its reason, its redelivery as a duplicate with the same reason');

-- ====================================================================================== the audit
select * from tests.audit_is_complete($$values ('duplicate'::text, 1), ('ignored', 3)$$, '3 ignored, 1 duplicate');

select * from finish();
rollback;
