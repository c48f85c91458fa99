-- The webhook tables in schema private are invisible to anon and authenticated (no usage on schema private) and
-- readable, not writable, by service_role, which also reads every user's ledger rows.
begin;
\ir ../../_helpers.psql
\ir ../../_fixtures/billing.psql
select plan(13);

select * from tests.create_billing_accounts() \gset

-- Service-side rows in the webhook tables, to see who can read them.
insert into private.stripe_webhook_events (id, type, stripe_created_at, status, payload)
values ('evt_pgtap021', 'invoice.paid', now(), 'failed', '{}');
insert into private.failed_webhook_events (event_id, type, payload, attempts)
values ('evt_pgtap021', 'invoice.paid', '{}', 3);
insert into private.webhook_audit_log (event_id, event_type, outcome, http_status)
values ('evt_pgtap021', 'invoice.paid', 'failed', 500);

select tests.authenticate_as_anon();
-- ====================================================================== the private webhook tables
select throws_ok('select * from private.stripe_webhook_events', '42501', 'permission denied for schema private',
  'anon cannot read private.stripe_webhook_events (no usage on schema private)');
select throws_ok('select * from private.failed_webhook_events', '42501', 'permission denied for schema private',
  'anon cannot read private.failed_webhook_events (no usage on schema private)');
select throws_ok('select * from private.webhook_audit_log', '42501', 'permission denied for schema private',
  'anon cannot read private.webhook_audit_log (no usage on schema private)');

select tests.clear_authentication();
select tests.authenticate_as(:'alice_id');
select throws_ok('select * from private.stripe_webhook_events', '42501', 'permission denied for schema private',
  'authenticated cannot read private.stripe_webhook_events (no usage on schema private)');
select throws_ok('select * from private.failed_webhook_events', '42501', 'permission denied for schema private',
  'authenticated cannot read private.failed_webhook_events (no usage on schema private)');
select throws_ok('select * from private.webhook_audit_log', '42501', 'permission denied for schema private',
  'authenticated cannot read private.webhook_audit_log (no usage on schema private)');

select tests.clear_authentication();
select tests.authenticate_as_service_role();
select is((select count(*)::int from private.stripe_webhook_events where id = 'evt_pgtap021'), 1,
  'service_role reads private.stripe_webhook_events');
select is((select count(*)::int from private.failed_webhook_events where event_id = 'evt_pgtap021'), 1,
  'service_role reads private.failed_webhook_events');
select is((select count(*)::int from private.webhook_audit_log where event_id = 'evt_pgtap021'), 1,
  'service_role reads private.webhook_audit_log');
select throws_ok(
  $$insert into private.webhook_audit_log (event_id, outcome, http_status) values ('evt_pgtap021', 'accepted', 200)$$,
  '42501', null, 'service_role cannot write private.webhook_audit_log (read-only for the API key)');
select throws_ok($$delete from private.webhook_audit_log where event_id = 'evt_pgtap021'$$,
  '42501', null, 'service_role cannot delete from private.webhook_audit_log');
select throws_ok($$update private.stripe_webhook_events set status = 'processed' where id = 'evt_pgtap021'$$,
  '42501', null, 'service_role cannot change private.stripe_webhook_events');
select is((select count(*)::int from public.token_transactions where user_id in (:'alice_id', :'bob_id')), 3,
  'service_role reads every user''s ledger rows');
select tests.clear_authentication();

select * from finish();
rollback;
