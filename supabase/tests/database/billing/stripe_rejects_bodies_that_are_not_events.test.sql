-- private.handle_stripe_event takes the body as text, as the stripe-webhook function passes it, and only the
-- database owner (the webhook's own connection) may call it: a body that is not a storable Stripe event (no evt_ id,
-- no epoch-seconds created, no Stripe event type, no data.object, not a JSON object, JSON that Postgres cannot store,
-- a field missing) is rejected and audited with the problem, never raised, and never recorded as an event.
begin;
\ir ../../_helpers.psql
\ir ../../_fixtures/billing.psql
select plan(23);

select * from tests.create_stripe_fixtures() \gset

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

-- ============================================================================= who may call it
select hasnt_function('private', 'handle_stripe_event', array['jsonb', 'text', 'inet'],
  'private.handle_stripe_event no longer takes the body as jsonb');
select ok(not has_function_privilege('service_role', 'private.handle_stripe_event(text, text, inet)', 'EXECUTE')
          and not has_function_privilege('authenticated', 'private.handle_stripe_event(text, text, inet)', 'EXECUTE')
          and not has_function_privilege('anon', 'private.handle_stripe_event(text, text, inet)', 'EXECUTE'),
  'Only the database owner (the webhook''s own connection) can call private.handle_stripe_event');
select ok(not has_function_privilege('service_role', 'private.process_stripe_event(text, boolean)', 'EXECUTE')
          and not has_function_privilege('authenticated', 'private.process_stripe_event(text, boolean)', 'EXECUTE')
          and not has_function_privilege('anon', 'private.process_stripe_event(text, boolean)', 'EXECUTE'),
  'Nor can the API roles call private.process_stripe_event');

-- ====================================================================================== the audit
select * from tests.audit_is_complete($$values ('rejected'::text, 6)$$, '6 rejections');

select * from finish();
rollback;
