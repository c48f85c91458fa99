-- The identity triggers: a sign-up (insert into auth.users) creates the user's public.users, profile
-- and settings rows; an email change follows into public.users; updated_at is stamped on update;
-- deleting the auth user removes everything.
begin;
\ir ../_helpers.psql
select plan(42);

-- ------------------------------------------------------------------------------ sign-up: full_name
select tests.create_user('trigger-alice@example.com',
  '{"full_name": "Alice Liddell", "name": "alice", "avatar_url": "https://example.com/alice.png"}')
  as alice_id \gset

select is(
  (select count(*)::int from public.users where id = tests.user_id('trigger-alice@example.com')),
  1,
  'A sign-up creates exactly one public.users row'
);
select is(
  (select count(*)::int from public.user_profiles where user_id = tests.user_id('trigger-alice@example.com')),
  1,
  'A sign-up creates exactly one public.user_profiles row'
);
select is(
  (select count(*)::int from public.user_settings where user_id = tests.user_id('trigger-alice@example.com')),
  1,
  'A sign-up creates exactly one public.user_settings row'
);
select is(
  (select email from public.users where id = tests.user_id('trigger-alice@example.com')),
  'trigger-alice@example.com',
  'public.users.email is the sign-up email'
);
select is(
  (select plan from public.users where id = tests.user_id('trigger-alice@example.com')),
  'free',
  'A new user is on the free plan'
);
select is(
  (select plan_status from public.users where id = tests.user_id('trigger-alice@example.com')),
  'active',
  'A new user''s plan status is active'
);
select ok(
  (select stripe_customer_id is null and stripe_subscription_id is null
     from public.users where id = tests.user_id('trigger-alice@example.com')),
  'A new user has no Stripe customer or subscription'
);
select is(
  (select display_name from public.user_profiles where user_id = tests.user_id('trigger-alice@example.com')),
  'Alice Liddell',
  'The display name is full_name from the sign-up metadata (full_name wins over name)'
);
select is(
  (select avatar_url from public.user_profiles where user_id = tests.user_id('trigger-alice@example.com')),
  'https://example.com/alice.png',
  'An https avatar_url from the sign-up metadata is kept'
);
select ok(
  (select bio is null and company is null and job_title is null
     from public.user_profiles where user_id = tests.user_id('trigger-alice@example.com')),
  'The rest of the profile starts empty'
);
select is(
  (select array[theme, locale, timezone]
     from public.user_settings where user_id = tests.user_id('trigger-alice@example.com')),
  array['system', 'en', 'UTC'],
  'Settings start at theme system, locale en, timezone UTC'
);
select is(
  (select array[email_notifications, marketing_emails, usage_alerts]
     from public.user_settings where user_id = tests.user_id('trigger-alice@example.com')),
  array[true, false, true],
  'Settings start with email notifications and usage alerts on and marketing emails off'
);

-- ---------------------------------------------------------------------------------- sign-up: name
select tests.create_user('trigger-bob@example.com', '{"name": "Bob", "avatar_url": "http://example.com/bob.png"}');

select is(
  (select display_name from public.user_profiles where user_id = tests.user_id('trigger-bob@example.com')),
  'Bob',
  'Without full_name the display name is name from the sign-up metadata'
);
select is(
  (select avatar_url from public.user_profiles where user_id = tests.user_id('trigger-bob@example.com')),
  null,
  'A non-https avatar_url from the sign-up metadata is dropped, not rejected'
);

-- ------------------------------------------------------------------------------ sign-up: no name
select tests.create_user('trigger-carol@example.com') as carol_id \gset

select is(
  (select count(*)::int from public.user_profiles where user_id = tests.user_id('trigger-carol@example.com')),
  1,
  'A sign-up without metadata still creates the profile'
);
select is(
  (select display_name from public.user_profiles where user_id = tests.user_id('trigger-carol@example.com')),
  null,
  'Without full_name or name the display name is null'
);

-- ------------------------------------------------------------------------ sign-up: very long name
select tests.create_user('trigger-dave@example.com', jsonb_build_object('full_name', repeat('d', 150)));

select is(
  (select display_name from public.user_profiles where user_id = tests.user_id('trigger-dave@example.com')),
  repeat('d', 100),
  'A full_name longer than 100 characters is truncated to 100 instead of failing the sign-up'
);

-- --------------------------------------------------------------- sign-up as the Auth service role
-- Auth inserts as supabase_auth_admin, which has no rights on public or private: the trigger
-- functions must do their work as their (security definer) owner.
-- (pgTAP itself is made callable by that role for this transaction only.)
grant usage on schema extensions to supabase_auth_admin;
grant execute on all functions in schema extensions to supabase_auth_admin;
set local role supabase_auth_admin;
select lives_ok(
  $$insert into auth.users (id, aud, role, email, raw_app_meta_data, raw_user_meta_data)
    values ('00000000-0000-4000-8000-00000000e001', 'authenticated', 'authenticated', 'trigger-erin@example.com',
            '{"provider":"email"}', '{"full_name": "Erin"}')$$,
  'supabase_auth_admin can insert a user into auth.users (the identity trigger succeeds)'
);
select lives_ok(
  $$update auth.users set email = 'trigger-erin-2@example.com' where id = '00000000-0000-4000-8000-00000000e001'$$,
  'supabase_auth_admin can change a user''s email (the email trigger succeeds)'
);
reset role;

select is(
  (select email from public.users where id = '00000000-0000-4000-8000-00000000e001'),
  'trigger-erin-2@example.com',
  'A sign-up and an email change made as supabase_auth_admin reach public.users'
);
select is(
  (select display_name from public.user_profiles where user_id = '00000000-0000-4000-8000-00000000e001'),
  'Erin',
  'A sign-up made as supabase_auth_admin creates the profile'
);
select is(
  (select count(*)::int from public.user_settings where user_id = '00000000-0000-4000-8000-00000000e001'),
  1,
  'A sign-up made as supabase_auth_admin creates the settings'
);

-- ---------------------------------------------------------------------------------- email change
update auth.users set email = 'trigger-alice-new@example.com'
 where id = tests.user_id('trigger-alice@example.com');

select is(
  (select email from public.users where id = tests.user_id('trigger-alice-new@example.com')),
  'trigger-alice-new@example.com',
  'Changing auth.users.email updates public.users.email'
);
select is(
  (select email from public.users where id = tests.user_id('trigger-bob@example.com')),
  'trigger-bob@example.com',
  'Changing one user''s email leaves the other users'' emails alone'
);

update auth.users set email = null where id = :'carol_id';
select is(
  (select email from public.users where id = :'carol_id'),
  null,
  'Clearing auth.users.email clears public.users.email'
);

-- --------------------------------------------------------------------------------- updated_at
-- now() is the transaction start, so "stamped" means equal to now(). First backdate the rows with
-- the triggers switched off (replica mode, local to this transaction), then update another column.
set local session_replication_role = replica;
update public.users set updated_at = '2000-01-01 00:00:00+00' where id = tests.user_id('trigger-bob@example.com');
update public.user_profiles set updated_at = '2000-01-01 00:00:00+00' where user_id = tests.user_id('trigger-bob@example.com');
update public.user_settings set updated_at = '2000-01-01 00:00:00+00' where user_id = tests.user_id('trigger-bob@example.com');
set local session_replication_role = origin;

select is(
  (select array[u.updated_at, p.updated_at, s.updated_at]
     from public.users u
     join public.user_profiles p on p.user_id = u.id
     join public.user_settings s on s.user_id = u.id
    where u.id = tests.user_id('trigger-bob@example.com')),
  array['2000-01-01 00:00:00+00'::timestamptz, '2000-01-01 00:00:00+00', '2000-01-01 00:00:00+00'],
  'Precondition: bob''s rows are backdated'
);

update public.users set plan = 'pro' where id = tests.user_id('trigger-bob@example.com');
update public.user_profiles set bio = 'Hi' where user_id = tests.user_id('trigger-bob@example.com');
update public.user_settings set theme = 'dark' where user_id = tests.user_id('trigger-bob@example.com');

select is(
  (select updated_at from public.users where id = tests.user_id('trigger-bob@example.com')),
  now(),
  'Updating public.users stamps updated_at with now()'
);
select is(
  (select updated_at from public.user_profiles where user_id = tests.user_id('trigger-bob@example.com')),
  now(),
  'Updating public.user_profiles stamps updated_at with now()'
);
select is(
  (select updated_at from public.user_settings where user_id = tests.user_id('trigger-bob@example.com')),
  now(),
  'Updating public.user_settings stamps updated_at with now()'
);
select is(
  (select created_at from public.users where id = tests.user_id('trigger-bob@example.com')),
  now(),
  'Updating public.users leaves created_at alone'
);

set local session_replication_role = replica;
update public.users set updated_at = '2000-01-01 00:00:00+00' where id = tests.user_id('trigger-bob@example.com');
set local session_replication_role = origin;
update public.users set updated_at = '1999-01-01 00:00:00+00' where id = tests.user_id('trigger-bob@example.com');
select is(
  (select updated_at from public.users where id = tests.user_id('trigger-bob@example.com')),
  now(),
  'An explicit updated_at in an update is overridden with now()'
);

-- -------------------------------------------------------------------------- constraints on users
select throws_ok(
  $$update public.users set plan = 'enterprise' where id = tests.user_id('trigger-bob@example.com')$$,
  '23503', null,
  'An unknown plan is rejected (plan references subscription_plans)'
);
select throws_ok(
  $$update public.users set plan_status = 'gone' where id = tests.user_id('trigger-bob@example.com')$$,
  '23514', null,
  'An unknown plan status is rejected'
);
select throws_ok(
  $$update public.users set stripe_customer_id = 'sub_123' where id = tests.user_id('trigger-bob@example.com')$$,
  '23514', null,
  'A Stripe customer id that does not start with cus_ is rejected'
);
select throws_ok(
  $$update public.users set stripe_subscription_id = 'cus_123' where id = tests.user_id('trigger-bob@example.com')$$,
  '23514', null,
  'A Stripe subscription id that does not start with sub_ is rejected'
);
update public.users set stripe_customer_id = 'cus_Shared1' where id = tests.user_id('trigger-bob@example.com');
select throws_ok(
  $$update public.users set stripe_customer_id = 'cus_Shared1' where id = tests.user_id('trigger-alice-new@example.com')$$,
  '23505', null,
  'Two users cannot share a Stripe customer id'
);

-- ------------------------------------------------------------------------------------- deletion
select is(
  (select count(*)::int from public.user_settings where user_id = :'alice_id'),
  1,
  'Precondition: alice still has her settings row before the deletion'
);
-- Auth deletes as supabase_auth_admin; the cascades run as the referencing tables' owner.
set local role supabase_auth_admin;
select lives_ok(format('delete from auth.users where id = %L', :'alice_id'),
  'supabase_auth_admin can delete a user from auth.users');
reset role;

select is(
  (select count(*)::int from public.users where id = :'alice_id'),
  0,
  'Deleting the auth user deletes its public.users row'
);
select is(
  (select count(*)::int from public.user_profiles where user_id = :'alice_id'),
  0,
  'Deleting the auth user deletes its profile'
);
select is(
  (select count(*)::int from public.user_settings where user_id = :'alice_id'),
  0,
  'Deleting the auth user deletes its settings'
);
select is(
  (select count(*)::int from public.users u
     join public.user_profiles p on p.user_id = u.id
     join public.user_settings s on s.user_id = u.id
    where u.id = tests.user_id('trigger-bob@example.com')),
  1,
  'Deleting one auth user leaves the other users'' rows alone'
);

select * from finish();
rollback;
