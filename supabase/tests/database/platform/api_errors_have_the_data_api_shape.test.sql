-- private.raise_api_error, the one way a client RPC refuses: it raises SQLSTATE PGRST with the message PostgREST
-- answers as the body (code, message, details, hint; details and hint as text) and a DETAIL with the HTTP status
-- and a headers object (which PostgREST requires, else PGRST121); it refuses to raise what is no client error; the
-- API roles cannot call it.
begin;
\ir ../../_helpers.psql
select plan(9);

create function tests.raised(p_sql text) returns jsonb
language plpgsql
as $$
declare
  v_state text;
  v_message text;
  v_detail text;
begin
  execute p_sql;
  return null;
exception when others then
  get stacked diagnostics v_state = returned_sqlstate, v_message = message_text, v_detail = pg_exception_detail;
  return jsonb_build_object('sqlstate', v_state, 'message', v_message, 'detail', v_detail);
end;
$$;

select tests.raised($$select private.raise_api_error(403, 'hire_limit_reached', 'Your plan allows 1', '1 of 1 active', 'Upgrade')$$)
  as raised \gset
select is(:'raised'::jsonb ->> 'sqlstate', 'PGRST', 'It raises SQLSTATE PGRST');
select is((:'raised'::jsonb ->> 'message')::jsonb,
  '{"code": "hire_limit_reached", "message": "Your plan allows 1", "details": "1 of 1 active", "hint": "Upgrade"}'::jsonb,
  'Its message is the JSON body: code, message, details, hint');
select is((:'raised'::jsonb ->> 'detail')::jsonb, '{"status": 403, "headers": {}}'::jsonb,
  'Its detail is the status, with a headers object');
select is(jsonb_typeof((:'raised'::jsonb ->> 'message')::jsonb -> 'details'), 'string',
  'details is text (PostgREST reads it as text)');
select is(((tests.raised($$select private.raise_api_error(400, 'invalid_sort', 'No such sort')$$) ->> 'message')::jsonb),
  '{"code": "invalid_sort", "message": "No such sort", "details": null, "hint": null}'::jsonb,
  'details and hint default to null');
select is(tests.raised($$select private.raise_api_error(200, 'fine', 'Not an error')$$) ->> 'sqlstate', '22023',
  'A status outside 400-599 is refused (22023)');
select is(tests.raised($$select private.raise_api_error(400, 'Not Snake', 'Bad code')$$) ->> 'sqlstate', '22023',
  'A code that is not snake_case is refused');
select is(tests.raised($$select private.raise_api_error(400, 'no_message', null)$$) ->> 'sqlstate', '22023',
  'A refusal without a message is refused');
select is(
  (select array_agg(r order by r) from unnest(array['anon', 'authenticated']) r
    where has_function_privilege(r, 'private.raise_api_error(integer,text,text,text,text)', 'execute')),
  null, 'anon and authenticated cannot call it');

select * from finish();
rollback;
