-- The identity constraints hold, for the service side's writes and for a user's own permitted ones: an unknown plan
-- or plan status, a Stripe customer or subscription id of the wrong kind or shared by two users, a theme other than
-- system, light or dark, a non-https avatar_url, a display name over 100 characters and a locale that is not a
-- BCP 47 tag are rejected; a display name of exactly 100 characters is accepted.
begin;
\ir ../../_helpers.psql
select plan(10);

select tests.create_user('trigger-bob@example.com');
select tests.create_user('trigger-alice-new@example.com');

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

-- ------------------------------------------------------------------------- constraints on a user's own writes
select tests.create_user('rls-alice@example.com', '{"full_name": "Alice"}') as alice_id \gset
select tests.authenticate_as(:'alice_id');

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
select tests.clear_authentication();

select * from finish();
rollback;
