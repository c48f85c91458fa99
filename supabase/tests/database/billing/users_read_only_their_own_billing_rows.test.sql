-- A signed-in user reads exactly their own subscriptions, balance, ledger rows and notifications, and nothing of
-- another user's; anon reads none of them.
begin;
\ir ../../_helpers.psql
\ir ../../_fixtures/billing.psql
select plan(16);

select * from tests.create_billing_accounts() \gset

-- ===================================================================================== alice reads
select tests.authenticate_as(:'alice_id');

select results_eq('select user_id from public.user_subscriptions', array[:'alice_id']::uuid[],
  'alice reads exactly one subscription, her own');
select results_eq('select user_id, balance from public.token_balances',
  format('values (%L::uuid, 300::bigint)', :'alice_id'),
  'alice reads exactly one balance, her own (300)');
select results_eq('select user_id, delta from public.token_transactions order by id',
  format('values (%L::uuid, 500::bigint), (%L::uuid, -200::bigint)', :'alice_id', :'alice_id'),
  'alice reads exactly her own two ledger rows');
select results_eq('select user_id, title from public.notifications order by title',
  format($$values (%L::uuid, 'Alice 1'), (%L::uuid, 'Alice 2')$$, :'alice_id', :'alice_id'),
  'alice reads exactly her own two notifications');

select is((select count(*)::int from public.user_subscriptions where user_id = :'bob_id'), 0,
  'alice cannot read bob''s subscription');
select is((select count(*)::int from public.token_balances where user_id = :'bob_id'), 0,
  'alice cannot read bob''s balance');
select is((select count(*)::int from public.token_transactions where user_id = :'bob_id'), 0,
  'alice cannot read bob''s ledger rows');
select is((select count(*)::int from public.notifications where user_id = :'bob_id'), 0,
  'alice cannot read bob''s notifications');

select tests.clear_authentication();
-- ========================================================================================= bob
select tests.authenticate_as(:'bob_id');
select results_eq('select user_id from public.user_subscriptions', array[:'bob_id']::uuid[],
  'bob reads exactly one subscription, his own');
select results_eq('select user_id, balance from public.token_balances',
  format('values (%L::uuid, 900::bigint)', :'bob_id'),
  'bob reads exactly one balance, his own (900)');
select results_eq('select user_id from public.token_transactions', array[:'bob_id']::uuid[],
  'bob reads exactly his own ledger row');
select results_eq('select user_id from public.notifications', array[:'bob_id']::uuid[],
  'bob reads exactly his own notification');

-- ========================================================================================= anon
select tests.clear_authentication();
select tests.authenticate_as_anon();
select throws_ok('select * from public.user_subscriptions', '42501', null, 'anon cannot read user_subscriptions');
select throws_ok('select * from public.token_balances', '42501', null, 'anon cannot read token_balances');
select throws_ok('select * from public.token_transactions', '42501', null, 'anon cannot read token_transactions');
select throws_ok('select * from public.notifications', '42501', null, 'anon cannot read notifications');
select tests.clear_authentication();

select * from finish();
rollback;
