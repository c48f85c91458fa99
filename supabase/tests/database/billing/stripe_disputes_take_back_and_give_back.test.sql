-- A dispute of a whole token pack payment takes the pack back once and a won dispute gives it back once (an older
-- or repeated dispute event changes nothing, the dispute is kept in its newest state); a pending refund takes its
-- share at once and, when it fails, gives it back once.
begin;
\ir ../../_helpers.psql
\ir ../../_fixtures/billing.psql
select plan(16);

select * from tests.create_stripe_fixtures() \gset

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

-- ====================================================================================== the audit
select * from tests.audit_is_complete($$values ('processed'::text, 7)$$, '7 processed');

select * from finish();
rollback;
