-- updated_at of public.users, user_profiles and user_settings is stamped with now() by every update, even over an
-- explicit value, and the update leaves created_at alone.
begin;
\ir ../../_helpers.psql
select plan(6);

select tests.create_user('trigger-bob@example.com');

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

select * from finish();
rollback;
