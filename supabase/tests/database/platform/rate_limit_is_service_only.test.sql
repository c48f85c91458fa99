-- private.rate_limit_hit refuses invalid parameters (22023) without counting them as hits, and only the service side
-- may use it: anon and authenticated can neither call it nor touch its buckets (42501, and nothing counted), while
-- service_role, granted EXECUTE, can call it end to end.
begin;
\ir ../../_helpers.psql
select plan(17);

-- A key with one hit of a limit of 3 in the current hour.
select 'pgtap023:' || extensions.gen_random_uuid() as k \gset
select hits as k_hits from private.rate_limit_hit(:'k', 3, 3600) \gset

-- ============================================================================ invalid parameters
select throws_ok(format('select * from private.rate_limit_hit(%L, 0, 60)', :'k'), '22023', null,
  'A limit of 0 is an invalid parameter (22023)');
select throws_ok(format('select * from private.rate_limit_hit(%L, -1, 60)', :'k'), '22023', null,
  'A negative limit is an invalid parameter (22023)');
select throws_ok(format('select * from private.rate_limit_hit(%L, 5, 0)', :'k'), '22023', null,
  'A window of 0 seconds is an invalid parameter (22023)');
select throws_ok(format('select * from private.rate_limit_hit(%L, 5, -60)', :'k'), '22023', null,
  'A negative window is an invalid parameter (22023)');
select throws_ok(format('select * from private.rate_limit_hit(%L, 5, 60, 0)', :'k'), '22023', null,
  'A cost of 0 is an invalid parameter (22023)');
select throws_ok(format('select * from private.rate_limit_hit(%L, 5, 60, -3)', :'k'), '22023', null,
  'A negative cost is an invalid parameter (22023)');
select throws_ok(format('select * from private.rate_limit_hit(%L, null, 60)', :'k' || ':null-limit'), '22023', null,
  'A null limit is an invalid parameter (22023), not a hit with allowed = null');
select is((select hits from private.rate_limit_buckets where key = :'k'), 1,
  'The refused calls did not count as hits');

-- ==================================================================================== who may call
select ok(not has_function_privilege('anon', 'private.rate_limit_hit(text, integer, integer, integer)', 'EXECUTE'),
  'anon has no EXECUTE on private.rate_limit_hit');
select ok(not has_function_privilege('authenticated', 'private.rate_limit_hit(text, integer, integer, integer)',
                                     'EXECUTE'),
  'authenticated has no EXECUTE on private.rate_limit_hit');
select ok(has_function_privilege('service_role', 'private.rate_limit_hit(text, integer, integer, integer)', 'EXECUTE'),
  'service_role has EXECUTE on private.rate_limit_hit');

select tests.authenticate_as_anon();
select throws_ok(format('select * from private.rate_limit_hit(%L, 1000, 60)', :'k'), '42501', null,
  'anon cannot call private.rate_limit_hit (42501)');
select throws_ok(format('select * from private.rate_limit_buckets where key = %L', :'k'), '42501', null,
  'anon cannot read the rate limit buckets');
select tests.clear_authentication();
select tests.create_user('ratelimit-alice@example.com') as alice_id \gset
select tests.authenticate_as(:'alice_id');
select throws_ok(format('select * from private.rate_limit_hit(%L, 1000, 60)', :'k'), '42501', null,
  'authenticated cannot call private.rate_limit_hit (42501)');
select throws_ok(format('delete from private.rate_limit_buckets where key = %L', :'k'), '42501', null,
  'authenticated cannot reset a rate limit bucket');
select tests.clear_authentication();
select is((select hits from private.rate_limit_buckets where key = :'k'), 1,
  'The refused anon and authenticated calls did not count against the key');
-- EXECUTE is granted to service_role, so a call as service_role must work end to end (the function
-- writes private.rate_limit_buckets, on which service_role has no privilege of its own).
select tests.authenticate_as_service_role();
select lives_ok(format('select * from private.rate_limit_hit(%L, 3, 3600)', :'k' || ':service'),
  'service_role can call private.rate_limit_hit (it is granted EXECUTE)');
select tests.clear_authentication();

select * from finish();
rollback;
