-- The plan, plan status, Stripe ids and email of public.users are the service side's: a signed-in user can change
-- none of them (the email follows auth.users), and they stay as they were; service_role reads every user's rows and
-- sets the plan and Stripe ids, which the user then reads.
begin;
\ir ../../_helpers.psql
select plan(13);

select tests.create_user('rls-alice@example.com', '{"full_name": "Alice"}') as alice_id \gset
select tests.create_user('rls-bob@example.com', '{"full_name": "Bob"}') as bob_id \gset

select tests.authenticate_as(:'alice_id');

-- ====================================================================== alice: her billing fields
select throws_ok(format($$update public.users set plan = 'max' where id = %L$$, :'alice_id'),
  '42501', null, 'alice cannot change her own plan');
select throws_ok(format($$update public.users set plan_status = 'trialing' where id = %L$$, :'alice_id'),
  '42501', null, 'alice cannot change her own plan status');
select throws_ok(format($$update public.users set stripe_customer_id = 'cus_Alice1' where id = %L$$, :'alice_id'),
  '42501', null, 'alice cannot set her own Stripe customer id');
select throws_ok(format($$update public.users set stripe_subscription_id = 'sub_Alice1' where id = %L$$, :'alice_id'),
  '42501', null, 'alice cannot set her own Stripe subscription id');
select throws_ok(format($$update public.users set email = 'alice@evil.example' where id = %L$$, :'alice_id'),
  '42501', null, 'alice cannot change public.users.email (it follows auth.users)');

select is((select plan from public.users where id = :'alice_id'), 'free',
  'After those attempts alice is still on the free plan');

-- ============================================================= as postgres: nothing leaked through
select tests.clear_authentication();

select is(
  (select array[plan, plan_status, stripe_customer_id, stripe_subscription_id, email]
     from public.users where id = :'alice_id'),
  array['free', 'active', null, null, 'rls-alice@example.com'],
  'alice''s billing fields and email are unchanged after her attempts'
);

-- ================================================================================= service_role
-- What there is to see (as postgres, which bypasses RLS), to compare service_role's view with.
select tests.clear_authentication();
select (select count(*) from public.users) as users_total,
       (select count(*) from public.user_profiles) as profiles_total,
       (select count(*) from public.user_settings) as settings_total \gset
select tests.authenticate_as_service_role();

select is((select count(*)::int from public.users), :users_total,
  'service_role reads every public.users row');
select is((select count(*)::int from public.user_profiles), :profiles_total,
  'service_role reads every profile');
select is((select count(*)::int from public.user_settings), :settings_total,
  'service_role reads every settings row');
select is((select count(*)::int from public.users where id in (:'alice_id', :'bob_id')), 2,
  'service_role reads both alice''s and bob''s public.users rows');

select is(
  tests.affected_rows(format(
    $$update public.users set plan = 'pro', plan_status = 'trialing',
        stripe_customer_id = 'cus_Alice1', stripe_subscription_id = 'sub_Alice1' where id = %L$$,
    :'alice_id')),
  1,
  'service_role can update alice''s plan, plan status and Stripe ids'
);

select tests.authenticate_as(:'alice_id');
select is(
  (select array[plan, plan_status, stripe_customer_id, stripe_subscription_id] from public.users),
  array['pro', 'trialing', 'cus_Alice1', 'sub_Alice1'],
  'alice reads the plan and Stripe ids the service side set'
);

select tests.clear_authentication();

select * from finish();
rollback;
