-- Identity RLS and grants, as the API roles see them: a signed-in user reads only their own rows and
-- changes only their own profile and settings columns; plan, plan status and the Stripe ids are the
-- service side's; anon sees nothing; the check constraints hold for user writes.
begin;
\ir ../_helpers.psql
select plan(52);

select tests.create_user('rls-alice@example.com', '{"full_name": "Alice"}') as alice_id \gset
select tests.create_user('rls-bob@example.com', '{"full_name": "Bob"}') as bob_id \gset


-- =============================================================================== alice: reading
select tests.authenticate_as(:'alice_id');

select is((select count(*)::int from public.users), 1, 'alice sees exactly one public.users row');
select results_eq('select id from public.users', array[:'alice_id']::uuid[],
  'The public.users row alice sees is her own');
select is((select count(*)::int from public.user_profiles), 1, 'alice sees exactly one profile');
select results_eq('select user_id from public.user_profiles', array[:'alice_id']::uuid[],
  'The profile alice sees is her own');
select is((select count(*)::int from public.user_settings), 1, 'alice sees exactly one settings row');
select results_eq('select user_id from public.user_settings', array[:'alice_id']::uuid[],
  'The settings row alice sees is her own');

select is((select count(*)::int from public.users where id = :'bob_id'), 0,
  'alice cannot read bob''s public.users row');
select is((select count(*)::int from public.user_profiles where user_id = :'bob_id'), 0,
  'alice cannot read bob''s profile');
select is((select count(*)::int from public.user_settings where user_id = :'bob_id'), 0,
  'alice cannot read bob''s settings');

-- ============================================================================ alice: bob's rows
select is(
  tests.affected_rows(format($$update public.user_profiles set display_name = 'Mallory' where user_id = %L$$, :'bob_id')),
  0,
  'alice''s update of bob''s profile affects no rows'
);
select is(
  tests.affected_rows(format($$update public.user_settings set theme = 'dark' where user_id = %L$$, :'bob_id')),
  0,
  'alice''s update of bob''s settings affects no rows'
);

-- No DELETE privilege at all: rows are removed by the auth.users cascade only.
select throws_ok(format('delete from public.users where id = %L', :'bob_id'), '42501', null,
  'alice cannot delete bob''s public.users row (permission denied)');
select throws_ok(format('delete from public.user_profiles where user_id = %L', :'bob_id'), '42501', null,
  'alice cannot delete bob''s profile (permission denied)');
select throws_ok(format('delete from public.user_settings where user_id = %L', :'bob_id'), '42501', null,
  'alice cannot delete bob''s settings (permission denied)');
select throws_ok(format('delete from public.users where id = %L', :'alice_id'), '42501', null,
  'alice cannot delete her own public.users row (permission denied)');
select throws_ok(format('delete from public.user_profiles where user_id = %L', :'alice_id'), '42501', null,
  'alice cannot delete her own profile (permission denied)');
select throws_ok(format('delete from public.user_settings where user_id = %L', :'alice_id'), '42501', null,
  'alice cannot delete her own settings (permission denied)');

-- No INSERT privilege at all: rows are created by the auth.users trigger only.
select throws_ok(format($$insert into public.user_profiles (user_id, display_name) values (%L, 'Mallory')$$, :'bob_id'),
  '42501', null,
  'alice cannot insert a profile for bob (permission denied)');
select throws_ok(format($$insert into public.user_settings (user_id) values (%L)$$, :'bob_id'),
  '42501', null,
  'alice cannot insert settings for bob (permission denied)');
select throws_ok(format($$insert into public.users (id, email) values (%L, 'x@example.com')$$, :'bob_id'),
  '42501', null,
  'alice cannot insert a public.users row (permission denied)');

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

-- ============================================================= alice: her profile and settings
select is(
  tests.affected_rows(format($$update public.user_profiles set display_name = 'Alice Liddell' where user_id = %L$$, :'alice_id')),
  1,
  'alice can update her own display name'
);
select is((select display_name from public.user_profiles where user_id = :'alice_id'), 'Alice Liddell',
  'alice reads back her new display name');
select is(
  tests.affected_rows(format($$update public.user_settings set theme = 'dark' where user_id = %L$$, :'alice_id')),
  1,
  'alice can update her own theme'
);
select is((select theme from public.user_settings where user_id = :'alice_id'), 'dark',
  'alice reads back her new theme');
select is(
  tests.affected_rows($$update public.user_profiles set company = 'Wonderland Ltd'$$),
  1,
  'An update by alice without a filter touches only her own profile'
);

select throws_ok(format('update public.user_profiles set user_id = %L where user_id = %L', :'bob_id', :'alice_id'),
  '42501', null, 'alice cannot move her profile to another user_id');
select throws_ok(format('update public.user_settings set user_id = %L where user_id = %L', :'bob_id', :'alice_id'),
  '42501', null, 'alice cannot move her settings to another user_id');

-- Check constraints hold for alice's own (permitted) writes.
select throws_ok(format($$update public.user_settings set theme = 'purple' where user_id = %L$$, :'alice_id'),
  '23514', null, 'A theme other than system, light or dark is rejected');
select throws_ok(format($$update public.user_profiles set avatar_url = 'http://example.com/a.png' where user_id = %L$$, :'alice_id'),
  '23514', null, 'A non-https avatar_url is rejected');
select throws_ok(format($$update public.user_profiles set display_name = repeat('x', 101) where user_id = %L$$, :'alice_id'),
  '23514', null, 'A display name of 101 characters is rejected');
select lives_ok(format($$update public.user_profiles set display_name = repeat('x', 100) where user_id = %L$$, :'alice_id'),
  'A display name of exactly 100 characters is accepted');
select throws_ok(format($$update public.user_settings set locale = 'English' where user_id = %L$$, :'alice_id'),
  '23514', null, 'A locale that is not a BCP 47 tag is rejected');

-- ============================================================= as postgres: nothing leaked through
select tests.clear_authentication();

select is((select display_name from public.user_profiles where user_id = :'bob_id'), 'Bob',
  'bob''s display name is unchanged after alice''s attempts');
select is((select theme from public.user_settings where user_id = :'bob_id'), 'system',
  'bob''s theme is unchanged after alice''s attempts');
select is((select company from public.user_profiles where user_id = :'bob_id'), null,
  'bob''s company is unchanged after alice''s unfiltered update');
select is(
  (select array[plan, plan_status, stripe_customer_id, stripe_subscription_id, email]
     from public.users where id = :'alice_id'),
  array['free', 'active', null, null, 'rls-alice@example.com'],
  'alice''s billing fields and email are unchanged after her attempts'
);

-- ========================================================================================= anon
select tests.authenticate_as_anon();

select throws_ok('select * from public.users', '42501', null,
  'anon cannot read public.users (permission denied)');
select throws_ok('select * from public.user_profiles', '42501', null,
  'anon cannot read public.user_profiles (permission denied)');
select throws_ok('select * from public.user_settings', '42501', null,
  'anon cannot read public.user_settings (permission denied)');
select throws_ok(format($$update public.user_profiles set display_name = 'anon' where user_id = %L$$, :'alice_id'),
  '42501', null,
  'anon cannot update a profile (permission denied)');

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
