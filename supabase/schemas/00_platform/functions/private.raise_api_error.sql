create or replace function private.raise_api_error(
  p_status integer, p_code text, p_message text, p_details text default null, p_hint text default null
) returns void
language plpgsql
set search_path = ''
as $$
begin
  if p_status is null or p_status not between 400 and 599 or p_code is null or p_code !~ '^[a-z][a-z0-9_]*$'
     or p_message is null then
    raise exception 'raise_api_error: % % is not a client error (status 400-599, a snake_case code, a message)',
      p_status, p_code using errcode = '22023';
  end if;
  -- PostgREST's own format: MESSAGE is the body it answers, DETAIL the status and headers (which it requires, even
  -- empty). details and hint are text there (a JSON object in them is a PGRST121).
  raise sqlstate 'PGRST' using
    message = json_build_object('code', p_code, 'message', p_message, 'details', p_details, 'hint', p_hint)::text,
    detail = json_build_object('status', p_status, 'headers', json_build_object())::text;
end;
$$;

comment on function private.raise_api_error(integer, text, text, text, text) is
  'The one way a client RPC refuses a request: raises SQLSTATE PGRST in PostgREST''s format, so the Data API answers '
  'HTTP p_status with {"code": p_code, "message", "details", "hint"} (the codes are listed in docs/error_codes.md, '
  '"Client RPCs"). The transaction is rolled back, so nothing the call did is written. Never returns.';
