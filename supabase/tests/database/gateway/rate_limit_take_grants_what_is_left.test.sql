-- The gateway's limiter, private.rate_limit_take(key, limit, window_seconds, need, want): it takes between need and
-- want hits of a fixed window, as many as are left, or none (and the refused need still counts); need 0 is never
-- refused, even with nothing left; a bucket of a previous window reads as empty; want < need and a negative need are
-- 22023.
begin;
\ir ../../_helpers.psql
select plan(11);

-- The limiter windows are whole minutes (and hours): start well inside one, this file takes far less than 10 s.
select pg_sleep(case when extract(second from clock_timestamp()) > 50 then 61 - extract(second from clock_timestamp())
                     else 0 end);

-- ============================================================================ rate_limit_take
select 'pgtap031:take:' || extensions.gen_random_uuid() as k_take \gset
select 'pgtap031:take:' || extensions.gen_random_uuid() as k_zero \gset

select results_eq(format('select granted, hits, remaining from private.rate_limit_take(%L, 10, 3600, 2, 4)', :'k_take'),
  $$values (4, 4, 6)$$, 'A take that fits is granted all it wants (need 2, want 4 of 10: granted 4)');
select results_eq(format('select granted, hits, remaining from private.rate_limit_take(%L, 10, 3600, 2, 8)', :'k_take'),
  $$values (6, 10, 0)$$, 'A take wanting more than is left is granted what is left (least(8, 10 - 4) = 6)');
select results_eq(format('select granted, hits, remaining from private.rate_limit_take(%L, 10, 3600, 1, 3)', :'k_take'),
  $$values (0, 11, 0)$$, 'A take whose need does not fit is refused (granted 0), and the refused need counts');
select is((select hits from private.rate_limit_buckets where key = :'k_take'), 11,
  'The bucket keeps the refused hit (11 of 10)');
select is((select reset_at from private.rate_limit_take(:'k_take', 10, 3600, 0, 1)), tests.window_end(3600),
  'reset_at is the end of the current fixed window');

select results_eq(format('select granted, hits from private.rate_limit_take(%L, 10, 3600, 3, 3)', :'k_zero'),
  $$values (3, 3)$$, 'A take of exactly its need is granted it');
select results_eq(format('select granted, hits from private.rate_limit_take(%L, 10, 3600, 0, 20)', :'k_zero'),
  $$values (7, 10)$$, 'Need 0 is never refused: it is granted what is left (7)');
select results_eq(format('select granted, hits, remaining from private.rate_limit_take(%L, 10, 3600, 0, 5)', :'k_zero'),
  $$values (0, 10, 0)$$, 'Need 0 with nothing left is granted 0, without an error and without counting');

update private.rate_limit_buckets set window_start = window_start - interval '1 hour' where key = :'k_take';
select results_eq(format('select granted, hits, remaining from private.rate_limit_take(%L, 10, 3600, 10, 10)', :'k_take'),
  $$values (10, 10, 0)$$, 'A bucket of a previous window reads as empty (all 10 granted again)');

select throws_ok($$select * from private.rate_limit_take('pgtap031:take:bad', 10, 60, 3, 2)$$, '22023', null,
  'want < need is refused (22023)');
select throws_ok($$select * from private.rate_limit_take('pgtap031:take:bad', 10, 60, -1, 2)$$, '22023', null,
  'A negative need is refused (22023)');

select * from finish();
rollback;
