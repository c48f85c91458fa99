create or replace function private.tg_token_usage__roll_up_agent_runs() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  update public.agent_runs r
     set input_tokens = r.input_tokens + u.input_tokens,
         cached_input_tokens = r.cached_input_tokens + u.cached_input_tokens,
         output_tokens = r.output_tokens + u.output_tokens,
         cost_tokens = r.cost_tokens + u.cost_tokens
    from (select i.run_id, i.user_id, sum(i.input_tokens) as input_tokens,
                 sum(i.cached_input_tokens) as cached_input_tokens, sum(i.output_tokens) as output_tokens,
                 sum(i.debited_tokens) as cost_tokens
            from inserted i where i.run_id is not null group by i.run_id, i.user_id) u
   -- A usage row counts for a run of its own user only.
   where r.id = u.run_id and r.user_id = u.user_id;
  -- And each model call's step learns what it was billed (a step stored before its usage settled).
  update public.agent_run_steps s
     set cost_tokens = i.debited_tokens
    from inserted i
   where i.run_id is not null and s.run_id = i.run_id and s.user_id = i.user_id
     and s.gateway_request_id = i.request_id and s.kind = 'model_call';
  return null;
end;
$$;

comment on function private.tg_token_usage__roll_up_agent_runs() is
  'AFTER INSERT on token_usage, per statement (transition table "inserted"): adds the tokens and the platform tokens '
  'debited of agent calls to their runs'' totals, whichever settlement path wrote them (at once, batched, or from '
  'the outbox later), so a run''s cost_tokens is exactly what its calls were billed; and sets the cost_tokens of the '
  'model call step that made each call, if it is stored already (record_agent_step takes it from token_usage '
  'otherwise).';
