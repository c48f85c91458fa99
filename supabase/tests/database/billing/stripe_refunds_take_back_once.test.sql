-- A refund of a token pack takes back the pack's share of it once, whatever event carries it: each refund its share
-- rounded down and the rounding remainder with the last of the money, never the user's other tokens; a charge that
-- lists no refunds is ignored; a repeated refund after the balance changed adds nothing; a refund of a spent pack
-- stops at 0 and records the shortfall; a refund delivered before its purchase waits for the credit.
begin;
\ir ../../_helpers.psql
\ir ../../_fixtures/billing.psql
select plan(34);

select * from tests.create_stripe_fixtures() \gset

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

-- ====================================================================================== the audit
select * from tests.audit_is_complete($$values ('ignored'::text, 1), ('processed', 11)$$, '11 processed, 1 ignored');

select * from finish();
rollback;
