-- A signed-in user writes none of the billing rows, not even their own: no insert, update or delete of a
-- subscription, balance, ledger row or notification (42501; of a notification only read_at may change), and
-- afterwards their subscription, balance, ledger and notifications are as they were.
begin;
\ir ../../_helpers.psql
\ir ../../_fixtures/billing.psql
select plan(21);

select * from tests.create_billing_accounts() \gset

select tests.authenticate_as(:'alice_id');

-- ==================================================================================== alice writes
select throws_ok(
  format($$insert into public.user_subscriptions
             (user_id, plan_id, status, stripe_subscription_id, stripe_customer_id, stripe_updated_at)
           values (%L, 'max', 'active', 'sub_pgtap021Fake', 'cus_pgtap021Alice', now())$$, :'alice_id'),
  '42501', null, 'alice cannot insert a subscription for herself');
select throws_ok(
  format('insert into public.token_balances (user_id, balance) values (%L, 1000000)', :'bob_id'),
  '42501', null, 'alice cannot insert a balance row');
select throws_ok(
  format($$insert into public.token_transactions (user_id, delta, balance_after, reason, reference)
           values (%L, 1000000, 1000300, 'adjustment', 'pgtap021:forged')$$, :'alice_id'),
  '42501', null, 'alice cannot insert a ledger row for herself');
select throws_ok(
  format($$insert into public.notifications (user_id, kind, title) values (%L, 'spam', 'Hi')$$, :'bob_id'),
  '42501', null, 'alice cannot insert a notification for bob');
select throws_ok(
  format($$insert into public.notifications (user_id, kind, title) values (%L, 'note', 'Hi')$$, :'alice_id'),
  '42501', null, 'alice cannot insert a notification for herself');

select throws_ok(format($$update public.user_subscriptions set plan_id = 'max' where user_id = %L$$, :'alice_id'),
  '42501', null, 'alice cannot change the plan of her own subscription');
select throws_ok(format($$update public.user_subscriptions set status = 'active' where user_id = %L$$, :'alice_id'),
  '42501', null, 'alice cannot change the status of her own subscription');
select throws_ok(format('update public.token_balances set balance = 1000000 where user_id = %L', :'alice_id'),
  '42501', null, 'alice cannot change her own balance');
select throws_ok(format('update public.token_transactions set delta = 1000000 where user_id = %L', :'alice_id'),
  '42501', null, 'alice cannot change her own ledger rows');
select throws_ok(format($$update public.notifications set title = 'Changed' where id = %L$$, :'alice_notification_id'),
  '42501', null, 'alice cannot change the title of her own notification');
select throws_ok(format($$update public.notifications set data = '{"x": 1}' where id = %L$$, :'alice_notification_id'),
  '42501', null, 'alice cannot change the data of her own notification');
select throws_ok(format('update public.notifications set user_id = %L where id = %L', :'bob_id', :'alice_notification_id'),
  '42501', null, 'alice cannot move her notification to bob');
select throws_ok(
  format('update public.notifications set read_at = now(), kind = %L where id = %L', 'other', :'alice_notification_id'),
  '42501', null, 'alice cannot change another column together with read_at');

select throws_ok(format('delete from public.user_subscriptions where user_id = %L', :'alice_id'),
  '42501', null, 'alice cannot delete her own subscription');
select throws_ok(format('delete from public.token_balances where user_id = %L', :'alice_id'),
  '42501', null, 'alice cannot delete her own balance row');
select throws_ok(format('delete from public.token_transactions where user_id = %L', :'alice_id'),
  '42501', null, 'alice cannot delete her own ledger rows');
select throws_ok(format('delete from public.notifications where id = %L', :'alice_notification_id'),
  '42501', null, 'alice cannot delete her own notification');
select throws_ok(format('delete from public.notifications where id = %L', :'bob_notification_id'),
  '42501', null, 'alice cannot delete bob''s notification');

-- ============================================================================ nothing leaked
select tests.clear_authentication();
select is((select count(*)::int from public.notifications where user_id = :'alice_id'), 2,
  'alice still has exactly two notifications');
select results_eq(
  'select u.plan_id, b.balance from public.user_subscriptions u join public.token_balances b using (user_id)
    where u.stripe_subscription_id = ''sub_pgtap021Alice''',
  $$values ('pro'::text, 300::bigint)$$,
  'alice''s subscription plan and balance are unchanged after her attempts');
select is((select count(*)::int from public.token_transactions where user_id = :'alice_id'), 2,
  'alice''s ledger still has exactly two rows');

select * from finish();
rollback;
