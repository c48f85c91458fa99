create or replace function private.drop_cron_job(p_name text) returns void
language sql
set search_path = ''
as $$
  select cron.unschedule(jobid) from cron.job where jobname = p_name;
$$;

comment on function private.drop_cron_job(text) is 'Idempotent: unschedules the pg_cron job named p_name if it exists.';
