-- Billing RLS and grants, as the API roles see them: a signed-in user reads only their own subscriptions,
-- balance, ledger and notifications and writes none of them, except marking their own notifications read;
-- everyone reads the active catalog (plans, token packs) and nobody but the service side writes it; the
-- webhook tables in schema private are invisible to anon and authenticated and readable by service_role.
begin;
\ir ../_helpers.psql
select plan(72);

select tests.create_user('billing-rls-alice@example.com') as alice_id \gset
select tests.create_user('billing-rls-bob@example.com') as bob_id \gset


-- ================================================================ fixtures (as postgres, the service side)
update public.users set stripe_customer_id = 'cus_pgtap021Alice' where id = :'alice_id';
update public.users set stripe_customer_id = 'cus_pgtap021Bob' where id = :'bob_id';
insert into public.user_subscriptions
  (user_id, plan_id, billing_period, status, stripe_subscription_id, stripe_customer_id, stripe_updated_at)
values
  (:'alice_id', 'pro', 'monthly', 'active', 'sub_pgtap021Alice', 'cus_pgtap021Alice', now()),
  (:'bob_id', 'max', 'yearly', 'active', 'sub_pgtap021Bob', 'cus_pgtap021Bob', now());
select id as alice_tx1 from private.update_user_token_balance(:'alice_id', 500, 'adjustment', 'pgtap021:alice:1') \gset
select id as alice_tx2 from private.update_user_token_balance(:'alice_id', -200, 'usage', 'pgtap021:alice:2') \gset
select id as bob_tx1 from private.update_user_token_balance(:'bob_id', 900, 'adjustment', 'pgtap021:bob:1') \gset
insert into public.notifications (user_id, kind, title) values
  (:'alice_id', 'payment_failed', 'Alice 1'),
  (:'alice_id', 'usage_alert', 'Alice 2'),
  (:'bob_id', 'payment_failed', 'Bob 1');
select id as alice_notification_id from public.notifications where title = 'Alice 1' and user_id = :'alice_id' \gset
select id as bob_notification_id from public.notifications where user_id = :'bob_id' \gset

-- An inactive plan and pack: hidden from the API roles.
insert into public.subscription_plans
  (id, name, monthly_token_allowance, requests_per_minute, tokens_per_minute, max_output_tokens, is_active)
values ('pgtap021_legacy', 'Legacy', 1, 1, 1, 1, false);
insert into public.token_packs (id, name, tokens, price_cents, is_active)
values ('pgtap021_old_pack', 'Old pack', 1, 1, false);
select array_agg(id order by id) as active_plans from public.subscription_plans where is_active \gset
select array_agg(id order by id) as active_packs from public.token_packs where is_active \gset

-- Service-side rows in the webhook tables, to see who can read them.
insert into private.stripe_webhook_events (id, type, stripe_created_at, status, payload)
values ('evt_pgtap021', 'invoice.paid', now(), 'failed', '{}');
insert into private.failed_webhook_events (event_id, type, payload, attempts)
values ('evt_pgtap021', 'invoice.paid', '{}', 3);
insert into private.webhook_audit_log (event_id, event_type, outcome, http_status)
values ('evt_pgtap021', 'invoice.paid', 'failed', 500);

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

-- ============================================================= alice marks notifications read
select is(tests.affected_rows(format('update public.notifications set read_at = now() where id = %L', :'alice_notification_id')),
  1, 'alice can set read_at on her own notification');
select isnt((select read_at from public.notifications where id = :'alice_notification_id'), null,
  'alice reads back read_at on her notification');
select is(tests.affected_rows(format('update public.notifications set read_at = now() where id = %L', :'bob_notification_id')),
  0, 'alice''s update of read_at on bob''s notification affects no rows');
select is(tests.affected_rows('update public.notifications set read_at = now()'), 2,
  'alice''s unfiltered read_at update touches only her own two notifications');
select is(tests.affected_rows(format('update public.notifications set read_at = null where id = %L', :'alice_notification_id')),
  1, 'alice can mark her own notification unread again');

-- ============================================================================ nothing leaked
select tests.clear_authentication();
select is((select read_at from public.notifications where id = :'bob_notification_id'), null,
  'bob''s notification is still unread after alice''s attempts');
select is((select count(*)::int from public.notifications where user_id = :'alice_id'), 2,
  'alice still has exactly two notifications');
select results_eq(
  'select u.plan_id, b.balance from public.user_subscriptions u join public.token_balances b using (user_id)
    where u.stripe_subscription_id = ''sub_pgtap021Alice''',
  $$values ('pro'::text, 300::bigint)$$,
  'alice''s subscription plan and balance are unchanged after her attempts');
select is((select count(*)::int from public.token_transactions where user_id = :'alice_id'), 2,
  'alice''s ledger still has exactly two rows');

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
select is(tests.affected_rows(format('update public.notifications set read_at = now() where id = %L', :'alice_notification_id')),
  0, 'bob''s update of read_at on alice''s notification affects no rows');

-- ================================================================== the catalog, as authenticated
select is((select array_agg(id order by id) from public.subscription_plans), :'active_plans'::text[],
  'A signed-in user reads exactly the active plans');
select is((select array_agg(id order by id) from public.token_packs), :'active_packs'::text[],
  'A signed-in user reads exactly the active token packs');
select is((select count(*)::int from public.subscription_plans where id = 'pgtap021_legacy'), 0,
  'A signed-in user cannot read an inactive plan');

select throws_ok(
  $$insert into public.subscription_plans (id, name, monthly_token_allowance, requests_per_minute, tokens_per_minute,
                                           max_output_tokens) values ('pgtap021_mine', 'Mine', 1e9, 1, 1, 1)$$,
  '42501', null, 'A signed-in user cannot insert a plan');
select throws_ok($$update public.subscription_plans set monthly_token_allowance = 1000000000 where id = 'free'$$,
  '42501', null, 'A signed-in user cannot change a plan');
select throws_ok($$delete from public.subscription_plans where id = 'max'$$,
  '42501', null, 'A signed-in user cannot delete a plan');
select throws_ok(
  $$insert into public.token_packs (id, name, tokens, price_cents) values ('pgtap021_cheap', 'Cheap', 1000000000, 1)$$,
  '42501', null, 'A signed-in user cannot insert a token pack');
select throws_ok($$update public.token_packs set price_cents = 1 where id = 'pack_20m'$$,
  '42501', null, 'A signed-in user cannot change a token pack');
select throws_ok($$delete from public.token_packs where id = 'pack_1m'$$,
  '42501', null, 'A signed-in user cannot delete a token pack');

-- =================================================================================== anon
select tests.clear_authentication();
select tests.authenticate_as_anon();
select is((select array_agg(id order by id) from public.subscription_plans), :'active_plans'::text[],
  'anon reads exactly the active plans');
select is((select array_agg(id order by id) from public.token_packs), :'active_packs'::text[],
  'anon reads exactly the active token packs');
select is((select count(*)::int from public.subscription_plans where not is_active), 0,
  'anon reads no inactive plan');
select is((select count(*)::int from public.token_packs where id = 'pgtap021_old_pack'), 0,
  'anon cannot read an inactive token pack');
select ok((select count(*) from public.subscription_plans) >= 3, 'anon reads the seeded plans (free, pro, max)');

select throws_ok('select * from public.user_subscriptions', '42501', null, 'anon cannot read user_subscriptions');
select throws_ok('select * from public.token_balances', '42501', null, 'anon cannot read token_balances');
select throws_ok('select * from public.token_transactions', '42501', null, 'anon cannot read token_transactions');
select throws_ok('select * from public.notifications', '42501', null, 'anon cannot read notifications');
select throws_ok($$update public.token_packs set price_cents = 1 where id = 'pack_20m'$$,
  '42501', null, 'anon cannot change a token pack');

-- ====================================================================== the private webhook tables
select throws_ok('select * from private.stripe_webhook_events', '42501', 'permission denied for schema private',
  'anon cannot read private.stripe_webhook_events (no usage on schema private)');
select throws_ok('select * from private.failed_webhook_events', '42501', 'permission denied for schema private',
  'anon cannot read private.failed_webhook_events (no usage on schema private)');
select throws_ok('select * from private.webhook_audit_log', '42501', 'permission denied for schema private',
  'anon cannot read private.webhook_audit_log (no usage on schema private)');

select tests.clear_authentication();
select tests.authenticate_as(:'alice_id');
select throws_ok('select * from private.stripe_webhook_events', '42501', 'permission denied for schema private',
  'authenticated cannot read private.stripe_webhook_events (no usage on schema private)');
select throws_ok('select * from private.failed_webhook_events', '42501', 'permission denied for schema private',
  'authenticated cannot read private.failed_webhook_events (no usage on schema private)');
select throws_ok('select * from private.webhook_audit_log', '42501', 'permission denied for schema private',
  'authenticated cannot read private.webhook_audit_log (no usage on schema private)');

select tests.clear_authentication();
select tests.authenticate_as_service_role();
select is((select count(*)::int from private.stripe_webhook_events where id = 'evt_pgtap021'), 1,
  'service_role reads private.stripe_webhook_events');
select is((select count(*)::int from private.failed_webhook_events where event_id = 'evt_pgtap021'), 1,
  'service_role reads private.failed_webhook_events');
select is((select count(*)::int from private.webhook_audit_log where event_id = 'evt_pgtap021'), 1,
  'service_role reads private.webhook_audit_log');
select throws_ok(
  $$insert into private.webhook_audit_log (event_id, outcome, http_status) values ('evt_pgtap021', 'accepted', 200)$$,
  '42501', null, 'service_role cannot write private.webhook_audit_log (read-only for the API key)');
select throws_ok($$delete from private.webhook_audit_log where event_id = 'evt_pgtap021'$$,
  '42501', null, 'service_role cannot delete from private.webhook_audit_log');
select throws_ok($$update private.stripe_webhook_events set status = 'processed' where id = 'evt_pgtap021'$$,
  '42501', null, 'service_role cannot change private.stripe_webhook_events');
select is((select count(*)::int from public.token_transactions where user_id in (:'alice_id', :'bob_id')), 3,
  'service_role reads every user''s ledger rows');
select tests.clear_authentication();

select * from finish();
rollback;
