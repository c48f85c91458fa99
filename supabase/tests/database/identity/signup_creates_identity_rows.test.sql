-- A sign-up (an insert into auth.users) creates exactly one public.users, user_profiles and user_settings row: the
-- sign-up email, the free plan, active, no Stripe ids; the display name from full_name, else name, else null, cut to
-- 100 characters rather than failing the sign-up; an https avatar_url kept, any other dropped; settings at their
-- defaults.
begin;
\ir ../../_helpers.psql
select plan(17);

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

select * from finish();
rollback;
