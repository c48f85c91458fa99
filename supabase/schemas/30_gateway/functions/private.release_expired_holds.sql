create or replace function private.release_expired_holds() returns integer
language plpgsql
set search_path = ''
as $$
declare
  v_request text;
  v_count integer := 0;
begin
  for v_request in select request_id from private.token_holds where expires_at < now() loop
    if private.gateway_release(v_request) then
      v_count := v_count + 1;
    end if;
  end loop;
  return v_count;
end;
$$;

comment on function private.release_expired_holds() is
  'pg_cron (aie_release_expired_holds): gives back holds left by calls that died before settling.';
