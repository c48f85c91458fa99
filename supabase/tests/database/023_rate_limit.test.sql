-- The Postgres rate limiter, private.rate_limit_hit(key, limit, window_seconds, cost): a fixed window
-- aligned to the epoch; exactly `limit` hits pass in a window, then every hit is denied with remaining 0
-- and reset_at at the window's end; a hit costs `cost`; a new window starts from zero; invalid parameters
-- are 22023; only the service side may call it; the cleanup job removes expired buckets.
begin;
\ir ../_helpers.psql
select plan(43);

-- The end of the current fixed window of p_seconds (windows are aligned to the epoch).
create function tests.window_end(p_seconds integer) returns timestamptz
language sql volatile
as $$ select to_timestamp((floor(extract(epoch from clock_timestamp()) / p_seconds) + 1) * p_seconds) $$;

select 'pgtap023:' || extensions.gen_random_uuid() as k \gset
select 'pgtap023:' || extensions.gen_random_uuid() as k_other \gset
select 'pgtap023:' || extensions.gen_random_uuid() as k_cost \gset
select 'pgtap023:' || extensions.gen_random_uuid() as k_big \gset

-- ============================================================================== limit 3 per hour
select tests.window_end(3600) as hour_end \gset
select results_eq(format('select allowed, hits, remaining from private.rate_limit_hit(%L, 3, 3600)', :'k'),
  $$values (true, 1, 2)$$, 'Hit 1 of a limit of 3 is allowed, 2 remaining');
select results_eq(format('select allowed, hits, remaining from private.rate_limit_hit(%L, 3, 3600)', :'k'),
  $$values (true, 2, 1)$$, 'Hit 2 of 3 is allowed, 1 remaining');
select results_eq(format('select allowed, hits, remaining from private.rate_limit_hit(%L, 3, 3600)', :'k'),
  $$values (true, 3, 0)$$, 'Hit 3 of 3 is allowed, 0 remaining');
select allowed as hit4_allowed, hits as hit4_hits, remaining as hit4_remaining, reset_at as hit4_reset_at
  from private.rate_limit_hit(:'k', 3, 3600) \gset
select is(:'hit4_allowed'::boolean, false, 'Hit 4 of a limit of 3 is denied');
select is(:'hit4_remaining'::int, 0, 'A denied hit reports remaining 0');
select is(:'hit4_hits'::int, 4, 'A denied hit still counts (hits 4)');
select is(:'hit4_reset_at'::timestamptz, :'hour_end'::timestamptz,
  'A denied hit reports reset_at at the end of the current hour-long window');
select results_eq(format('select allowed, hits, remaining from private.rate_limit_hit(%L, 3, 3600)', :'k'),
  $$values (false, 5, 0)$$, 'Every further hit in the window is denied too');
select results_eq(
  format('select window_start, hits, expires_at from private.rate_limit_buckets where key = %L', :'k'),
  format($$values (%L::timestamptz - interval '1 hour', 5, %L::timestamptz)$$, :'hour_end', :'hour_end'),
  'The bucket holds the window start, the 5 hits and expires at the window end');

select results_eq(format('select allowed, hits, remaining from private.rate_limit_hit(%L, 3, 3600)', :'k_other'),
  $$values (true, 1, 2)$$, 'Another key has its own counter');

-- A limit of 1: exactly one hit passes.
select results_eq(format('select allowed, remaining from private.rate_limit_hit(%L, 1, 3600)', :'k_big'),
  $$values (true, 0)$$, 'With a limit of 1 the first hit is allowed');
select results_eq(format('select allowed, remaining from private.rate_limit_hit(%L, 1, 3600)', :'k_big'),
  $$values (false, 0)$$, 'With a limit of 1 the second hit is denied');

-- ============================================================================== a new window
-- Move the bucket's window back by an hour: the next hit falls in a new window and starts from zero.
update private.rate_limit_buckets
   set window_start = window_start - interval '1 hour', expires_at = expires_at - interval '1 hour'
 where key = :'k';
select results_eq(format('select allowed, hits, remaining from private.rate_limit_hit(%L, 3, 3600)', :'k'),
  $$values (true, 1, 2)$$, 'The first hit after the window ended starts a new window (hits 1, allowed)');
select is((select expires_at from private.rate_limit_buckets where key = :'k'), :'hour_end'::timestamptz,
  'The bucket of the new window expires at the new window end');

-- ============================================================================ windows and reset_at
select is(
  (select extract(epoch from reset_at)::bigint % 60 from private.rate_limit_hit(:'k_other' || ':m', 10, 60)),
  0::bigint, 'A 60-second window ends on a whole minute (windows are aligned to the epoch)');
select ok(
  (select reset_at > clock_timestamp() and reset_at <= clock_timestamp() + interval '60 seconds'
     from private.rate_limit_hit(:'k_other' || ':m2', 10, 60)),
  'reset_at of a 60-second window is in the next 60 seconds');
select is((select reset_at from private.rate_limit_hit(:'k_other' || ':d', 10, 86400)), tests.window_end(86400),
  'reset_at of a day-long window is the next midnight UTC');

-- ========================================================================================== cost
select results_eq(format('select allowed, hits, remaining from private.rate_limit_hit(%L, 10, 3600, 4)', :'k_cost'),
  $$values (true, 4, 6)$$, 'A hit of cost 4 against a limit of 10 counts 4 (6 remaining)');
select results_eq(format('select allowed, hits, remaining from private.rate_limit_hit(%L, 10, 3600, 4)', :'k_cost'),
  $$values (true, 8, 2)$$, 'A second hit of cost 4 counts 8 (2 remaining)');
select results_eq(format('select allowed, hits, remaining from private.rate_limit_hit(%L, 10, 3600, 4)', :'k_cost'),
  $$values (false, 12, 0)$$, 'A third hit of cost 4 would reach 12 of 10: denied, 0 remaining');
select results_eq(
  format('select allowed, hits, remaining from private.rate_limit_hit(%L, 10, 3600, 10)', :'k_cost' || ':exact'),
  $$values (true, 10, 0)$$, 'A single hit costing exactly the limit is allowed, 0 remaining');
select results_eq(
  format('select allowed, hits, remaining from private.rate_limit_hit(%L, 10, 3600, 11)', :'k_cost' || ':over'),
  $$values (false, 11, 0)$$, 'A single hit costing more than the limit is denied');
select results_eq(format('select allowed, hits from private.rate_limit_hit(%L, 10, 3600)', :'k_cost' || ':default'),
  $$values (true, 1)$$, 'The default cost is 1');

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

-- ================================================================================ the cleanup job
insert into private.rate_limit_buckets (key, window_start, hits, expires_at) values
  ('pgtap023:expired', now() - interval '1 hour', 3, now() - interval '2 minutes'),
  ('pgtap023:just-expired', now() - interval '1 hour', 3, now() - interval '30 seconds');
create function tests.run(p_sql text) returns void language plpgsql as $$ begin execute p_sql; end $$;
select tests.run((select command from cron.job where jobname = 'aie_rate_limit_cleanup'));
select is((select count(*)::int from private.rate_limit_buckets where key = 'pgtap023:expired'), 0,
  'The cleanup job''s command deletes a bucket that expired over a minute ago');
select is((select count(*)::int from private.rate_limit_buckets where key = 'pgtap023:just-expired'), 1,
  'The cleanup job''s command keeps a bucket that expired less than a minute ago');
select is((select count(*)::int from private.rate_limit_buckets where key = :'k'), 1,
  'The cleanup job''s command keeps a live bucket');

select * from finish();
rollback;
