-- The marketplace's pg_cron job (supabase/schemas/40_marketplace/jobs.sql): aie_employee_analytics_fold every minute,
-- calling private.fold_employee_analytics.
begin;
\ir ../../_helpers.psql
select plan(1);

select results_eq(
  $$select format('%s | %s | %s', jobname, schedule, command) collate "default" from cron.job
     where jobname = 'aie_employee_analytics_fold'$$,
  array['aie_employee_analytics_fold | * * * * * | select private.fold_employee_analytics()'],
  'The analytics fold is scheduled every minute');

select * from finish();
rollback;
