create or replace function private.ensure_cron_job(p_name text, p_schedule text, p_command text) returns bigint
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
