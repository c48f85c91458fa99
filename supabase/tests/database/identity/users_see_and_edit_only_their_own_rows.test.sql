-- Identity RLS and grants, as the API roles see them: a signed-in user reads only their own public.users, profile
-- and settings rows, updates only their own profile and settings (another user's update touches nothing, an
-- unfiltered one only their own, a row cannot be moved to another user_id), inserts and deletes none of them, and
-- nothing of another user's changes; anon can read or update none of them.
begin;
\ir ../../_helpers.psql
select plan(34);

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

-- ============================================================= as postgres: nothing leaked through
select tests.clear_authentication();

select is((select display_name from public.user_profiles where user_id = :'bob_id'), 'Bob',
  'bob''s display name is unchanged after alice''s attempts');
select is((select theme from public.user_settings where user_id = :'bob_id'), 'system',
  'bob''s theme is unchanged after alice''s attempts');
select is((select company from public.user_profiles where user_id = :'bob_id'), null,
  'bob''s company is unchanged after alice''s unfiltered update');

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
select tests.clear_authentication();

select * from finish();
rollback;
