create or replace function private.purge_cron_history(p_keep interval default interval '7 days') returns integer
language plpgsql
set search_path = ''
as $$
declare
  v_count integer;
begin
  delete from cron.job_run_details where coalesce(end_time, start_time) < now() - p_keep;
  get diagnostics v_count = row_count;
  return v_count;
end;
$$;

comment on function private.purge_cron_history(interval) is
  'pg_cron (aie_cron_history_purge): deletes cron.job_run_details older than p_keep (7 days), which pg_cron '
  'never trims itself. Returns rows deleted.';
