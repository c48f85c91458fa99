-- A debit through private.update_user_token_balance never takes a balance below zero: one token more than the
-- balance is refused (PB402) without a ledger row or using up its reference, exactly the balance leaves 0; amounts
-- are 64-bit; the balance always equals the sum of the ledger's deltas and its newest balance_after, and every
-- ledger row records the running sum.
begin;
\ir ../../_helpers.psql
select plan(13);

select tests.create_user('ledger-alice@example.com') as alice_id \gset

-- alice starts with a credit of 1000.
select id as credit_id from private.update_user_token_balance(:'alice_id', 1000, 'adjustment', 'pgtap020:credit:1') \gset

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

select * from finish();
rollback;
