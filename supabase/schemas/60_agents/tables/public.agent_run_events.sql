create table public.agent_run_events (
  run_id uuid not null,
  sequence_number integer not null constraint sequence_number_is_positive check (sequence_number > 0),
  user_id uuid not null,
  type text not null constraint type_is_known check (type in (
    'run.created', 'run.in_progress', 'message.delta', 'tool_call.started', 'tool_call.completed',
    'run.completed', 'run.incomplete', 'run.failed', 'run.cancelled', 'run.expired', 'done')),
  data jsonb not null,
  created_at timestamptz not null default now(),
  primary key (run_id, sequence_number),
  constraint owner_is_the_runs foreign key (run_id, user_id)
    references public.agent_runs (id, user_id) on delete cascade
);

comment on table public.agent_run_events is
  'What an agent run streamed, in order (sequence_number from 1), as the SSE events agents-execute sends: kept so '
  'that a client that disconnected replays what it missed (GET agents-execute/runs/{id}/events?starting_after=N). '
  'Message deltas are written in batches as they stream. Written only by the agents service; users read their '
  'own; purged a week after the run ended (aie_agent_run_events_purge).';
comment on column public.agent_run_events.data is 'The event as sent, without type and sequence_number.';

create index agent_run_events_created_idx on public.agent_run_events (created_at);
-- Serves the owner foreign key (deleting a run, a user).
create index agent_run_events_run_user_idx on public.agent_run_events (run_id, user_id);

alter table public.agent_run_events enable row level security;

create policy "Users can read the events of their own agent runs" on public.agent_run_events
  for select to authenticated using ((select auth.uid()) = user_id);

revoke all on public.agent_run_events from anon, authenticated;
grant select on public.agent_run_events to authenticated;
