-- The token ledger applies each reference once: a new user starts with one balance row of 0 and no ledger rows; a
-- change through private.update_user_token_balance returns its token_transactions row, which agrees with the
-- balance; repeating it with the same reference returns the original row and changes nothing, and reusing the
-- reference with another delta or for another user is a conflict (PB409) that changes nothing either.
begin;
\ir ../../_helpers.psql
select plan(17);

select tests.create_user('ledger-alice@example.com') as alice_id \gset
select tests.create_user('ledger-bob@example.com') as bob_id \gset

-- =========================================================================== a new user's balance
select results_eq(
  format('select balance from public.token_balances where user_id = %L', :'alice_id'),
  array[0::bigint],
  'A new auth user gets exactly one token_balances row, with balance 0'
);
select is((select count(*)::int from public.token_transactions where user_id = :'alice_id'), 0,
  'A new auth user has no ledger rows');

-- ====================================================================================== a credit
select id as credit_id, delta as credit_delta, balance_after as credit_balance_after, reason as credit_reason,
       user_id as credit_user_id, metadata as credit_metadata
  from private.update_user_token_balance(:'alice_id', 1000, 'adjustment', 'pgtap020:credit:1', '{"note": "first"}')
\gset

select is(:'credit_delta'::bigint, 1000::bigint, 'The credit returns its ledger row with delta 1000');
select is(:'credit_balance_after'::bigint, 1000::bigint, 'The credit''s ledger row records balance_after 1000');
select is(:'credit_user_id'::uuid, :'alice_id'::uuid, 'The credit''s ledger row belongs to alice');
select is(:'credit_reason'::text, 'adjustment', 'The credit''s ledger row records its reason');
select is(:'credit_metadata'::jsonb, '{"note": "first"}'::jsonb, 'The credit''s ledger row records its metadata');
select is((select balance from public.token_balances where user_id = :'alice_id'), 1000::bigint,
  'After a credit of 1000 alice''s balance is 1000');
select results_eq(
  format('select id, delta, balance_after, reference from public.token_transactions where user_id = %L', :'alice_id'),
  format('values (%s::bigint, 1000::bigint, 1000::bigint, %L::text)', :'credit_id', 'pgtap020:credit:1'),
  'The credit wrote exactly one ledger row, the one it returned'
);

-- ================================================================================= idempotency
select is(
  (select id from private.update_user_token_balance(:'alice_id', 1000, 'adjustment', 'pgtap020:credit:1')),
  :'credit_id'::bigint,
  'Repeating a change with the same reference returns the original row id'
);
select is((select balance from public.token_balances where user_id = :'alice_id'), 1000::bigint,
  'Repeating a change with the same reference leaves the balance unchanged');
select is((select count(*)::int from public.token_transactions where user_id = :'alice_id'), 1,
  'Repeating a change with the same reference adds no ledger row');

select throws_ok(
  format($$select private.update_user_token_balance(%L, 999, 'adjustment', 'pgtap020:credit:1')$$, :'alice_id'),
  'PB409', null,
  'Reusing a reference with a different delta is a conflict (PB409)'
);
select throws_ok(
  format($$select private.update_user_token_balance(%L, 1000, 'adjustment', 'pgtap020:credit:1')$$, :'bob_id'),
  'PB409', null,
  'Reusing a reference for another user is a conflict (PB409)'
);
select is((select balance from public.token_balances where user_id = :'alice_id'), 1000::bigint,
  'After the conflicts alice''s balance is still 1000');
select is((select balance from public.token_balances where user_id = :'bob_id'), 0::bigint,
  'After the conflict bob''s balance is still 0');
select is((select count(*)::int from public.token_transactions where reference = 'pgtap020:credit:1'), 1,
  'After the conflicts the reference still has exactly one ledger row');

select * from finish();
rollback;
