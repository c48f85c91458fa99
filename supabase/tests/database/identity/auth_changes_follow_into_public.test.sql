-- What Auth does to auth.users reaches the identity rows: a sign-up and an email change made as supabase_auth_admin
-- (which has no rights of its own on public or private) work through the security definer triggers; an email
-- change, or clearing it, follows into public.users for that user only; deleting the auth user (as
-- supabase_auth_admin) removes its public.users, profile and settings rows and no one else's.
begin;
\ir ../../_helpers.psql
select plan(14);

select tests.create_user('trigger-alice@example.com') as alice_id \gset
select tests.create_user('trigger-bob@example.com');
select tests.create_user('trigger-carol@example.com') as carol_id \gset

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
