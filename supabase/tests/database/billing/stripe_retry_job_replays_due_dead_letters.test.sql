-- pg_cron's aie_stripe_webhook_retry runs private.retry_failed_webhook_events() every 5 minutes; it leaves a dead
-- letter alone while its next_retry_at is in the future, then replays and resolves it once, and a later run credits
-- nothing more.
begin;
\ir ../../_helpers.psql
\ir ../../_fixtures/billing.psql
select plan(12);

select * from tests.create_stripe_fixtures() \gset

-- ================================================================================ the scheduled job
select results_eq(
  $$select jobname::text collate "default", schedule, active from cron.job where jobname = 'aie_stripe_webhook_retry'$$,
  $$values ('aie_stripe_webhook_retry'::text, '*/5 * * * *'::text, true)$$,
  'pg_cron runs aie_stripe_webhook_retry every 5 minutes');
select is((select command from cron.job where jobname = 'aie_stripe_webhook_retry'),
  'select private.retry_failed_webhook_events()', 'aie_stripe_webhook_retry calls private.retry_failed_webhook_events()');

-- ================================================================================ the retries
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
select * from tests.audit_is_complete($$values ('failed'::text, 3)$$, '3 failures');

select * from finish();
rollback;
