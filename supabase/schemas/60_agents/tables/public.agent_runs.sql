create table public.agent_runs (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references public.users (id) on delete cascade,
  session_id uuid not null,
  hire_id uuid not null,
  employee_id uuid not null,
  employee_version integer not null,
  provider text not null,
  model text not null,
  user_message_id uuid,
  assistant_message_id uuid,
  status text not null default 'queued' constraint status_is_known
    check (status in ('queued', 'in_progress', 'completed', 'incomplete', 'failed', 'cancelled', 'expired')),
  incomplete_reason text constraint incomplete_reason_is_known
    check (incomplete_reason in ('max_steps', 'max_cost', 'repeated_tool_call', 'max_output_tokens', 'time_limit')),
  error_code text constraint error_code_is_a_code check (error_code ~ '^[a-z][a-z0-9_]*$'),
  error_message text constraint error_message_is_short check (char_length(error_message) <= 1000),
  idempotency_key text constraint idempotency_key_is_bounded check (char_length(idempotency_key) between 1 and 255),
  request_fingerprint text,
  max_steps integer not null default 8 constraint max_steps_is_bounded check (max_steps between 1 and 32),
  max_output_tokens integer not null constraint max_output_tokens_is_positive check (max_output_tokens > 0),
  max_cost_tokens bigint not null constraint max_cost_tokens_is_positive check (max_cost_tokens > 0),
  step_count integer not null default 0 constraint step_count_is_not_negative check (step_count >= 0),
  input_tokens bigint not null default 0,
  cached_input_tokens bigint not null default 0,
  output_tokens bigint not null default 0,
  cost_tokens bigint not null default 0,
  created_at timestamptz not null default now(),
  started_at timestamptz,
  ended_at timestamptz,
  heartbeat_at timestamptz not null default now(),
  cancel_requested_at timestamptz,
  updated_at timestamptz not null default now(),
  -- What the steps' and events' composite foreign keys reference: their owner is the run's.
  constraint agent_runs_id_user_id_key unique (id, user_id),
  constraint idempotency_key_is_unique_per_user unique (user_id, idempotency_key),
  constraint session_is_the_owners foreign key (session_id, user_id)
    references public.chat_sessions (id, user_id) on delete cascade,
  constraint hire_is_the_owners foreign key (hire_id, user_id)
    references public.purchased_employees (id, user_id) on delete cascade,
  constraint ran_a_version foreign key (employee_id, employee_version)
    references public.ai_employee_versions (employee_id, version),
  constraint user_message_is_in_the_session foreign key (user_message_id, session_id)
    references public.chat_messages (id, session_id) on delete set null (user_message_id),
  constraint assistant_message_is_in_the_session foreign key (assistant_message_id, session_id)
    references public.chat_messages (id, session_id) on delete set null (assistant_message_id),
  constraint incomplete_has_a_reason check ((status = 'incomplete') = (incomplete_reason is not null)),
  constraint error_code_only_when_it_did_not_complete
    check (error_code is null or status in ('failed', 'cancelled', 'expired')),
  constraint ended_when_over check ((ended_at is null) = (status in ('queued', 'in_progress')))
);

comment on table public.agent_runs is
  'One execution of a hired AI employee on a chat session, answering one user message (agents-execute): the '
  'pinned version it ran with, its limits and totals, and how it ended. At most one queued or in-progress run per '
  'session. Written only by the agents service (private functions); users read their own.';

comment on column public.agent_runs.employee_version is
  'The hire''s pinned version when the run started: the prompt, tools and model it ran with.';
comment on column public.agent_runs.user_message_id is 'The user message it answers (null once the user deleted it).';
comment on column public.agent_runs.assistant_message_id is
  'The assistant message it wrote when it ended (once: complete, or failed / cancelled with what it produced).';
comment on column public.agent_runs.status is
  'queued, in_progress; then completed, incomplete (a limit stopped it: incomplete_reason), failed (error_code), '
  'cancelled (by the user) or expired (its worker stopped sending heartbeats).';
comment on column public.agent_runs.incomplete_reason is
  'Which limit stopped an incomplete run: max_steps, max_cost, repeated_tool_call (the model asked for a tool call '
  'it had already made, same arguments), max_output_tokens, time_limit (the worker''s wall clock).';
comment on column public.agent_runs.idempotency_key is
  'The client''s Idempotency-Key: the same key from the same user returns this run, never a second one.';
comment on column public.agent_runs.request_fingerprint is
  'A hash of the request the key came with: the same key with another request is refused (422).';
comment on column public.agent_runs.max_cost_tokens is
  'The run''s cost cap in platform tokens: no model call starts once cost_tokens has reached it.';
comment on column public.agent_runs.step_count is 'Steps stored so far (model calls and tool calls).';
comment on column public.agent_runs.cost_tokens is
  'Platform tokens its gateway calls were billed: the sum of their token_usage rows (debited_tokens), kept by '
  'token_usage''s trigger as they settle. input_tokens, cached_input_tokens and output_tokens likewise.';
comment on column public.agent_runs.heartbeat_at is
  'Last sign of life of the worker running it (each step, and a timer between): a queued or in-progress run whose '
  'heartbeat is stale is expired by the sweep (aie_agent_runs_expire).';
comment on column public.agent_runs.cancel_requested_at is
  'When the user asked to cancel it: the worker stops between steps and aborts the model call in flight.';

-- At most one queued or in-progress run per session (agents-execute answers 409 with its id).
create unique index agent_runs_one_active_per_session_idx on public.agent_runs (session_id)
  where status in ('queued', 'in_progress');
-- A session's runs, newest first; also serves the session foreign key.
create index agent_runs_session_created_idx on public.agent_runs (session_id, user_id, created_at desc);
create index agent_runs_hire_idx on public.agent_runs (hire_id, user_id);
create index agent_runs_employee_version_idx on public.agent_runs (employee_id, employee_version);
create index agent_runs_user_message_idx on public.agent_runs (user_message_id, session_id);
create index agent_runs_assistant_message_idx on public.agent_runs (assistant_message_id, session_id);
-- What the sweep reads: active runs by heartbeat.
create index agent_runs_active_heartbeat_idx on public.agent_runs (heartbeat_at)
  where status in ('queued', 'in_progress');

create trigger _100_timestamps before update on public.agent_runs
  for each row execute function private.tg__set_updated_at();

alter table public.agent_runs enable row level security;

create policy "Users can read their own agent runs" on public.agent_runs
  for select to authenticated using ((select auth.uid()) = user_id);

-- Least privilege on top of RLS: runs are started, advanced and ended by the agents service alone.
revoke all on public.agent_runs from anon, authenticated;
grant select on public.agent_runs to authenticated;

-- chat_messages.run_id (50_chat) references the run that produced the message; it lives here, with its target.
alter table public.chat_messages add constraint produced_by_a_run foreign key (run_id)
  references public.agent_runs (id) on delete set null;
create index chat_messages_run_idx on public.chat_messages (run_id);

-- token_usage (30_gateway) rows of an agent call add up into their run's totals.
create trigger _500_roll_up_agent_runs after insert on public.token_usage
  referencing new table as inserted
  for each statement execute function private.tg_token_usage__roll_up_agent_runs();
