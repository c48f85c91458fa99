-- A token pack bought through Stripe Checkout is credited once: checkout.session.completed credits the pack (one
-- token_pack_purchase ledger row keyed by the payment intent, with the amount paid) and links the user to the Stripe
-- customer; its redelivery and the payment's own payment_intent.succeeded credit nothing more.
begin;
\ir ../../_helpers.psql
\ir ../../_fixtures/billing.psql
select plan(12);

select * from tests.create_stripe_fixtures() \gset

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

select results_eq(
  $$select outcome, http_status, reason from private.webhook_audit_log where event_id = 'evt_pgtap022_cs_pack' order by id$$,
  $$values ('accepted'::text, 200, 'processed'::text), ('duplicate'::text, 200, 'duplicate'::text)$$,
  'A processed event is audited as accepted (processed), its redelivery as a plain duplicate');

-- ====================================================================================== the audit
select * from tests.audit_is_complete($$values ('duplicate'::text, 1), ('processed', 2)$$, '2 processed, 1 duplicate');

select * from finish();
rollback;
