-- private.update_user_token_balance refuses what is not a change (a delta of 0 or null, a null or blank reference:
-- 22023), a change for an unknown user (PB404) and an unknown reason (23514), and none of the refused calls writes a
-- ledger row; the delta is a bigint.
begin;
\ir ../../_helpers.psql
select plan(10);

select tests.create_user('ledger-alice@example.com') as alice_id \gset

-- ============================================================================ invalid parameters
select throws_ok(
  format($$select private.update_user_token_balance(%L, 0, 'adjustment', 'pgtap020:zero')$$, :'alice_id'),
  '22023', null, 'A delta of 0 is an invalid parameter (22023)');
select throws_ok(
  format($$select private.update_user_token_balance(%L, null, 'adjustment', 'pgtap020:null-delta')$$, :'alice_id'),
  '22023', null, 'A null delta is an invalid parameter (22023)');
select throws_ok(
  format($$select private.update_user_token_balance(%L, 5, 'adjustment', null)$$, :'alice_id'),
  '22023', null, 'A null reference is an invalid parameter (22023)');
select throws_ok(
  format($$select private.update_user_token_balance(%L, 5, 'adjustment', '')$$, :'alice_id'),
  '22023', null, 'An empty reference is an invalid parameter (22023)');
select throws_ok(
  format($$select private.update_user_token_balance(%L, 5, 'adjustment', '   ')$$, :'alice_id'),
  '22023', null, 'A reference of only spaces is an invalid parameter (22023)');
select throws_ok(
  format($$select private.update_user_token_balance(%L, 5, 'adjustment', E'\t\n')$$, :'alice_id'),
  '22023', null, 'A reference of only tabs and newlines is an invalid parameter (22023)');
select throws_ok(
  $$select private.update_user_token_balance(extensions.gen_random_uuid(), 5, 'adjustment', 'pgtap020:nobody')$$,
  'PB404', null, 'A change for an unknown user is refused (PB404)');
select throws_ok(
  format($$select private.update_user_token_balance(%L, 5, 'gift', 'pgtap020:bad-reason')$$, :'alice_id'),
  '23514', null, 'A reason outside the known list is refused (23514)');
select is((select count(*)::int from public.token_transactions where reference like 'pgtap020:%' and reference not in
            ('pgtap020:credit:1', 'pgtap020:debit:1', 'pgtap020:debit:all', 'pgtap020:big')),
  0,
  'None of the refused calls wrote a ledger row');

-- ================================================================================ integer amounts
select has_function('private', 'update_user_token_balance', array['uuid', 'bigint', 'text', 'text', 'jsonb'],
  'private.update_user_token_balance takes the delta as bigint');

select * from finish();
rollback;
