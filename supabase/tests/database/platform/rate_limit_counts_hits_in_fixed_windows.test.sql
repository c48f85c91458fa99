-- The Postgres rate limiter, private.rate_limit_hit(key, limit, window_seconds, cost): a fixed window aligned to the
-- epoch; exactly `limit` hits pass in a window, then every hit is denied (and still counted) with remaining 0 and
-- reset_at at the window's end; each key has its own counter; a hit costs `cost` (1 by default); a new window starts
-- from zero.
begin;
\ir ../../_helpers.psql
select plan(23);

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

select * from finish();
rollback;
