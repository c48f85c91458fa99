create table public.agent_run_steps (
  run_id uuid not null,
  step_index integer not null constraint step_index_is_not_negative check (step_index >= 0),
  user_id uuid not null,
  kind text not null constraint kind_is_known check (kind in ('model_call', 'tool_call')),
  tool_name text constraint tool_name_is_a_name check (tool_name ~ '^[a-z][a-z0-9_]{0,63}$'),
  tool_call_id text constraint tool_call_id_is_short check (char_length(tool_call_id) <= 128),
  input jsonb,
  output jsonb,
  status text not null constraint status_is_known check (status in ('completed', 'failed', 'cancelled')),
  error_code text constraint error_code_is_a_code check (error_code ~ '^[a-z][a-z0-9_]*$'),
  attempts integer not null default 1 constraint attempts_is_positive check (attempts >= 1),
  gateway_request_id text,
  model text,
  input_tokens bigint not null default 0,
  cached_input_tokens bigint not null default 0,
  output_tokens bigint not null default 0,
  cost_tokens bigint,
  started_at timestamptz not null,
  ended_at timestamptz not null,
  primary key (run_id, step_index),
  constraint owner_is_the_runs foreign key (run_id, user_id)
    references public.agent_runs (id, user_id) on delete cascade,
  constraint tool_calls_name_their_tool check ((kind = 'tool_call') = (tool_name is not null)),
  constraint error_code_only_on_failure check (error_code is null or status <> 'completed'),
  constraint ends_after_it_starts check (ended_at >= started_at)
);

comment on table public.agent_run_steps is
  'The steps of an agent run, each stored as it ends: a model call (through the gateway: its request id, tokens '
  'and cost) or a tool call (the tool, its input and output). Written only by the agents service; users read '
  'their own.';
comment on column public.agent_run_steps.input is
  'A tool call''s arguments (as the model sent them); a model call''s summary (messages sent, tools offered).';
comment on column public.agent_run_steps.output is
  'A tool call''s result (bounded by the tool''s output limit); a model call''s text and the tool calls it asked for.';
comment on column public.agent_run_steps.attempts is 'Times the step was tried (a model call retried after a 429/5xx).';
comment on column public.agent_run_steps.gateway_request_id is
  'A model call''s gateway request id: its public.token_usage row.';
comment on column public.agent_run_steps.cost_tokens is
  'Platform tokens a model call was billed, when its settlement answered in time (null for a tool call, or when the '
  'usage went through the outbox: the run''s cost_tokens counts it once it settles).';

-- Serves the owner foreign key (deleting a run, a user).
create index agent_run_steps_run_user_idx on public.agent_run_steps (run_id, user_id);

alter table public.agent_run_steps enable row level security;

create policy "Users can read the steps of their own agent runs" on public.agent_run_steps
  for select to authenticated using ((select auth.uid()) = user_id);

revoke all on public.agent_run_steps from anon, authenticated;
grant select on public.agent_run_steps to authenticated;
