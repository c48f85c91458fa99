-- The token ledger: private.update_user_token_balance is the only way a balance changes. A change and its
-- token_transactions row agree; a reference applies once (a repeat returns the original row, a different
-- repeat is PB409); a balance never goes below zero (PB402); the ledger is append-only (PB405) except for
-- the cascade of a deleted user; only the service side may call the function; amounts are 64-bit integers.
begin;
\ir ../_helpers.psql
select plan(62);

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

-- ======================================================================================= debits
select is(
  (select balance_after from private.update_user_token_balance(:'alice_id', -400, 'usage', 'pgtap020:debit:1')),
  600::bigint,
  'A debit of 400 from 1000 records balance_after 600'
);
select is((select balance from public.token_balances where user_id = :'alice_id'), 600::bigint,
  'After a debit of 400 alice''s balance is 600');

select throws_ok(
  format($$select private.update_user_token_balance(%L, -601, 'usage', 'pgtap020:debit:too-much')$$, :'alice_id'),
  'PB402', null,
  'A debit one token larger than the balance is refused (PB402)'
);
select is((select balance from public.token_balances where user_id = :'alice_id'), 600::bigint,
  'A refused debit leaves the balance unchanged');
select is((select count(*)::int from public.token_transactions where user_id = :'alice_id'), 2,
  'A refused debit writes no ledger row');
select is((select count(*)::int from public.token_transactions where reference = 'pgtap020:debit:too-much'), 0,
  'A refused debit does not consume its reference');

select is(
  (select balance_after from private.update_user_token_balance(:'alice_id', -600, 'usage', 'pgtap020:debit:all')),
  0::bigint,
  'A debit of exactly the balance is allowed and leaves 0'
);
select throws_ok(
  format($$select private.update_user_token_balance(%L, -1, 'usage', 'pgtap020:debit:from-zero')$$, :'alice_id'),
  'PB402', null,
  'A debit of 1 from a zero balance is refused (PB402)'
);
select is((select balance from public.token_balances where user_id = :'alice_id'), 0::bigint,
  'alice''s balance is 0, never negative');

-- 64-bit amounts: more than a 32-bit integer holds.
select is(
  (select balance_after from private.update_user_token_balance(:'alice_id', 3000000000, 'adjustment', 'pgtap020:big')),
  3000000000::bigint,
  'A credit of 3 000 000 000 tokens (beyond int4) is recorded exactly'
);

-- Balance and ledger agree.
select is(
  (select balance from public.token_balances where user_id = :'alice_id'),
  (select sum(delta)::bigint from public.token_transactions where user_id = :'alice_id'),
  'alice''s balance equals the sum of her ledger deltas'
);
select is(
  (select balance from public.token_balances where user_id = :'alice_id'),
  (select balance_after from public.token_transactions where user_id = :'alice_id' order by id desc limit 1),
  'alice''s balance equals the balance_after of her newest ledger row'
);
select is(
  (select count(*)::int from (
     select balance_after, sum(delta) over (order by id) as running from public.token_transactions
      where user_id = :'alice_id') r
    where r.balance_after <> r.running),
  0,
  'Every one of alice''s ledger rows records the running sum of the deltas as balance_after'
);

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

-- ================================================================================ integer amounts
select has_function('private', 'update_user_token_balance', array['uuid', 'bigint', 'text', 'text', 'jsonb'],
  'private.update_user_token_balance takes the delta as bigint');

-- Generic over every table in public: money and token columns are exact integers, never float/numeric.
select is(
  (select coalesce(array_agg(format('%I.%I %s', c.table_name, c.column_name, c.data_type)
                             order by c.table_name, c.column_name), '{}')
     from information_schema.columns c
     join information_schema.tables t on t.table_schema = c.table_schema and t.table_name = c.table_name
    where c.table_schema = 'public' and t.table_type = 'BASE TABLE'
      and c.column_name ~ '(_cents|tokens|balance|delta|balance_after|allowance)$'
      and c.data_type not in ('bigint', 'integer')),
  '{}'::text[],
  'No money or token column in public is a float, numeric or any non-integer type (have = the offenders)'
);
-- Token amounts (balances, deltas, allowances, pack sizes) are bigint; limits such as max_output_tokens and
-- prices in cents may be integer.
select is(
  (select coalesce(array_agg(format('%I.%I %s', c.table_name, c.column_name, c.data_type)
                             order by c.table_name, c.column_name), '{}')
     from information_schema.columns c
     join information_schema.tables t on t.table_schema = c.table_schema and t.table_name = c.table_name
    where c.table_schema = 'public' and t.table_type = 'BASE TABLE'
      and c.column_name ~ '(^tokens|balance|delta|balance_after|allowance)$'
      and c.data_type <> 'bigint'),
  '{}'::text[],
  'Every token amount column in public (tokens, *balance, *delta, *allowance) is bigint (have = the offenders)'
);
select ok(
  (select count(*) from information_schema.columns c
     join information_schema.tables t on t.table_schema = c.table_schema and t.table_name = c.table_name
    where c.table_schema = 'public' and t.table_type = 'BASE TABLE'
      and c.column_name ~ '(^tokens|balance|delta|balance_after|allowance)$') >= 5,
  'The amount guards see the billing columns (balance, delta, balance_after, tokens, monthly_token_allowance)'
);

select * from finish();
rollback;
