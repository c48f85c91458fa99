-- The gateway's pg_cron jobs (supabase/schemas/30_gateway/jobs.sql): aie_release_expired_holds and aie_usage_outbox
-- every minute, aie_usage_alerts every 15 minutes, each calling its private function.
begin;
\ir ../../_helpers.psql
select plan(1);

-- ============================================================================ cron
select results_eq(
  $$select format('%s | %s | %s', jobname, schedule, command) collate "default" from cron.job
     where jobname in ('aie_release_expired_holds', 'aie_usage_outbox', 'aie_usage_alerts') order by jobname$$,
  array['aie_release_expired_holds | * * * * * | select private.release_expired_holds()',
        'aie_usage_alerts | */15 * * * * | select private.check_usage_alerts()',
        'aie_usage_outbox | * * * * * | select private.process_usage_outbox()'],
  'The three gateway cron jobs are scheduled');

select * from finish();
rollback;
