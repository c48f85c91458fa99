-- An event that cannot be applied is recorded as failed with its error, becomes a dead letter after its third
-- failure (keeping every error) and is not tried again by further deliveries; once the cause is fixed, replaying the
-- dead letter applies it once and resolves it, and the operator (service_role, granted EXECUTE) can replay one too;
-- failed deliveries are audited as 500 with the error, replays are not deliveries.
begin;
\ir ../../_helpers.psql
\ir ../../_fixtures/billing.psql
select plan(26);

select * from tests.create_stripe_fixtures() \gset

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

select results_eq(
  $$select outcome, http_status, reason like 'PB422:%', request_id like 'req\_pgtap022\_%', source_ip
      from private.webhook_audit_log where event_id = 'evt_pgtap022_fail_erin' order by id limit 1$$,
  $$values ('failed'::text, 500, true, true, '203.0.113.7'::inet)$$,
  'A failed delivery is audited as failed (500) with the error, the request id and the source ip');
select is(
  (select count(*)::int from private.webhook_audit_log where event_id = 'evt_pgtap022_fail_erin'),
  5, 'Replays are not deliveries: erin''s event has exactly its 5 deliveries audited');

-- ============================================================================= the operator's replay
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

-- ====================================================================================== the audit
select * from tests.audit_is_complete($$values ('duplicate'::text, 1), ('failed', 4)$$, '4 failures, 1 duplicate');

select * from finish();
rollback;
