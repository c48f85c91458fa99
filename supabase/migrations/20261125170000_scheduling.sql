-- Scheduling: pg_cron, and one idempotent way for every feature to (re)schedule its jobs.
--   extension  pg_cron (in pg_catalog, as Supabase installs it; its objects live in schema cron)
--   function   private.ensure_cron_job(name, schedule, command)

create extension if not exists pg_cron with schema pg_catalog;
grant usage on schema cron to postgres;

create function private.ensure_cron_job(p_name text, p_schedule text, p_command text) returns bigint
language plpgsql
set search_path = ''
as $$
declare
  v_job_id bigint;
begin
  if p_name !~ '^aie_[a-z0-9_]+$' then
    raise exception 'cron job names start with aie_ and are snake_case: %', p_name using errcode = '22023';
  end if;
  perform cron.unschedule(jobid) from cron.job where jobname = p_name;
  select cron.schedule(p_name, p_schedule, p_command) into v_job_id;
  return v_job_id;
end;
$$;
comment on function private.ensure_cron_job(text, text, text) is
  'Idempotent: (re)schedules the pg_cron job named p_name (prefix aie_) to run p_command on p_schedule, '
  'replacing any job of that name. Returns the job id.';

create function private.drop_cron_job(p_name text) returns void
language sql
set search_path = ''
as $$
  select cron.unschedule(jobid) from cron.job where jobname = p_name;
$$;
comment on function private.drop_cron_job(text) is 'Idempotent: unschedules the pg_cron job named p_name if it exists.';
