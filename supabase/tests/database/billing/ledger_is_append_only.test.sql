-- The ledger is append-only and written by the service side only: no ledger row can be updated or deleted, by
-- postgres (PB405) or service_role (no privilege, not even TRUNCATE); only service_role may call
-- private.update_user_token_balance (anon and authenticated, even for themselves, get 42501); deleting the auth user
-- is the one way rows go, with the user's balance, leaving other users' rows in place.
begin;
\ir ../../_helpers.psql
select plan(19);

select tests.create_user('ledger-alice@example.com') as alice_id \gset
select tests.create_user('ledger-bob@example.com') as bob_id \gset

-- alice's ledger: a credit of 1000 (with metadata), two debits and a large credit.
select id as credit_id
  from private.update_user_token_balance(:'alice_id', 1000, 'adjustment', 'pgtap020:credit:1', '{"note": "first"}')
\gset
select private.update_user_token_balance(:'alice_id', -400, 'usage', 'pgtap020:debit:1');
select private.update_user_token_balance(:'alice_id', -600, 'usage', 'pgtap020:debit:all');
select private.update_user_token_balance(:'alice_id', 3000000000, 'adjustment', 'pgtap020:big');

-- ===================================================================================== append-only
select throws_ok(
  format('update public.token_transactions set delta = 1000000 where id = %s', :'credit_id'),
  'PB405', null, 'postgres cannot UPDATE a ledger row (PB405, append-only)');
select throws_ok(
  format('delete from public.token_transactions where id = %s', :'credit_id'),
  'PB405', null, 'postgres cannot DELETE a ledger row of an existing user (PB405, append-only)');
select throws_ok(
  format($$update public.token_transactions set metadata = '{"x": 1}' where user_id = %L$$, :'alice_id'),
  'PB405', null, 'postgres cannot UPDATE even the metadata of a ledger row (PB405)');

select tests.authenticate_as_service_role();
-- service_role has no UPDATE/DELETE/TRUNCATE privilege on the ledger at all: refused before the trigger.
select throws_ok(
  format('update public.token_transactions set delta = 1000000 where id = %s', :'credit_id'),
  '42501', null, 'service_role cannot UPDATE a ledger row (no privilege)');
select throws_ok(
  format('delete from public.token_transactions where id = %s', :'credit_id'),
  '42501', null, 'service_role cannot DELETE a ledger row (no privilege)');
select throws_ok('truncate public.token_transactions', '42501', null,
  'service_role cannot TRUNCATE the ledger (no privilege)');
select tests.clear_authentication();

select results_eq(
  format('select delta, metadata from public.token_transactions where id = %s', :'credit_id'),
  $$values (1000::bigint, '{"note": "first"}'::jsonb)$$,
  'After the refused writes the credit''s ledger row is unchanged'
);

-- ================================================================================ who may call it
select ok(
  not has_function_privilege('anon', 'private.update_user_token_balance(uuid, bigint, text, text, jsonb)', 'EXECUTE'),
  'anon has no EXECUTE on private.update_user_token_balance');
select ok(
  not has_function_privilege('authenticated', 'private.update_user_token_balance(uuid, bigint, text, text, jsonb)',
                             'EXECUTE'),
  'authenticated has no EXECUTE on private.update_user_token_balance');
select ok(
  has_function_privilege('service_role', 'private.update_user_token_balance(uuid, bigint, text, text, jsonb)', 'EXECUTE'),
  'service_role has EXECUTE on private.update_user_token_balance');

select tests.authenticate_as_anon();
select throws_ok(
  format($$select private.update_user_token_balance(%L, 5000, 'adjustment', 'pgtap020:anon')$$, :'bob_id'),
  '42501', null, 'anon cannot call private.update_user_token_balance (42501)');
select tests.clear_authentication();
select tests.authenticate_as(:'bob_id');
select throws_ok(
  format($$select private.update_user_token_balance(%L, 5000, 'adjustment', 'pgtap020:self-credit')$$, :'bob_id'),
  '42501', null, 'An authenticated user cannot credit themselves through private.update_user_token_balance (42501)');
select tests.authenticate_as_service_role();
select is(
  (select balance_after from private.update_user_token_balance(:'bob_id', 250, 'adjustment', 'pgtap020:service')),
  250::bigint,
  'service_role can call private.update_user_token_balance (credit of 250 for bob)');
select tests.clear_authentication();
select is((select balance from public.token_balances where user_id = :'bob_id'), 250::bigint,
  'Only the service_role call changed bob''s balance (250)');

-- ============================================================================ deleting the user
select ok((select count(*) from public.token_transactions where user_id = :'alice_id') >= 4,
  'alice has ledger rows before she is deleted');
select lives_ok(format('delete from auth.users where id = %L', :'alice_id'),
  'Deleting alice''s auth.users row is allowed despite her append-only ledger rows');
select is((select count(*)::int from public.token_transactions where user_id = :'alice_id'), 0,
  'Deleting the auth user cascades her ledger rows away');
select is((select count(*)::int from public.token_balances where user_id = :'alice_id'), 0,
  'Deleting the auth user cascades her balance row away');
select is((select count(*)::int from public.token_transactions where user_id = :'bob_id'), 1,
  'Deleting alice leaves bob''s ledger row in place');

select * from finish();
rollback;
