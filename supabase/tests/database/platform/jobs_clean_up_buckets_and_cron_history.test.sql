-- The platform's pg_cron jobs (supabase/schemas/00_platform/jobs.sql): aie_rate_limit_cleanup, every 10 minutes,
-- deletes the rate limit buckets that expired over a minute ago and keeps the others; aie_cron_history_purge, daily at
-- 03:17, calls private.purge_cron_history(), which deletes pg_cron's run history older than 7 days (or than the period
-- it is given) and which the API roles cannot call.
begin;
\ir ../../_helpers.psql
select plan(10);

-- A live bucket: one hit of a limit of 3 in the current hour.
select 'pgtap023:' || extensions.gen_random_uuid() as k \gset
select hits as k_hits from private.rate_limit_hit(:'k', 3, 3600) \gset

-- ================================================================================ scheduled jobs
select results_eq(
  $$select jobname::text collate "default", schedule, active from cron.job
     where jobname in ('aie_rate_limit_cleanup', 'aie_cron_history_purge') order by jobname$$,
  $$values ('aie_cron_history_purge'::text, '17 3 * * *'::text, true),
           ('aie_rate_limit_cleanup'::text, '*/10 * * * *'::text, true)$$,
  'pg_cron runs aie_cron_history_purge daily at 03:17 and aie_rate_limit_cleanup every 10 minutes');
select ok((select command from cron.job where jobname = 'aie_rate_limit_cleanup') ~ 'delete from private\.rate_limit_buckets',
  'aie_rate_limit_cleanup deletes expired private.rate_limit_buckets');
select is((select command from cron.job where jobname = 'aie_cron_history_purge'),
  'select private.purge_cron_history()', 'aie_cron_history_purge calls private.purge_cron_history()');

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

-- ================================================================================ cron history
-- Clear whatever history is already older than 7 days, so that only this test's rows count.
select private.purge_cron_history() as purged_before \gset
select jobid as purge_jobid from cron.job where jobname = 'aie_cron_history_purge' \gset
select nextval('cron.runid_seq') as old_runid \gset
select nextval('cron.runid_seq') as recent_runid \gset
insert into cron.job_run_details (jobid, runid, job_pid, database, username, command, status, return_message,
                                  start_time, end_time)
values (:purge_jobid, :old_runid, 1, current_database(), current_user, 'select private.purge_cron_history()',
        'succeeded', '1 row', now() - interval '8 days 1 second', now() - interval '8 days'),
       (:purge_jobid, :recent_runid, 1, current_database(), current_user, 'select private.purge_cron_history()',
        'succeeded', '1 row', now() - interval '1 day 1 second', now() - interval '1 day');
select is(private.purge_cron_history(), 1, 'private.purge_cron_history() deletes one row: the run that ended 8 days ago');
select results_eq(
  format('select runid from cron.job_run_details where runid in (%s, %s)', :old_runid, :recent_runid),
  format('values (%s::bigint)', :recent_runid),
  'The run older than 7 days is gone; the run of a day ago is kept');
select is(private.purge_cron_history(interval '12 hours'), 1,
  'With a shorter period to keep, private.purge_cron_history(interval) deletes the run of a day ago too');

select ok(not has_function_privilege('service_role', 'private.purge_cron_history(interval)', 'EXECUTE')
          and not has_function_privilege('authenticated', 'private.purge_cron_history(interval)', 'EXECUTE')
          and not has_function_privilege('anon', 'private.purge_cron_history(interval)', 'EXECUTE'),
  'The API roles cannot call private.purge_cron_history');

select * from finish();
rollback;
