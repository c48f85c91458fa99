create table public.token_usage (
  id bigint generated always as identity primary key,
  request_id text not null constraint token_usage_request_id_is_unique unique,
  user_id uuid not null references public.users (id) on delete cascade,
  provider text not null,
  model text not null,
  input_tokens bigint not null default 0 constraint input_tokens_is_not_negative check (input_tokens >= 0),
  cached_input_tokens bigint not null default 0
    constraint cached_input_tokens_is_within_input check (cached_input_tokens between 0 and input_tokens),
  output_tokens bigint not null default 0 constraint output_tokens_is_not_negative check (output_tokens >= 0),
  cost_micro_usd bigint constraint cost_is_not_negative check (cost_micro_usd >= 0),
  pricing_id bigint references public.model_pricing (id),
  price_missing boolean not null default false,
  tokens_estimated boolean not null default false,
  debited_tokens bigint not null default 0,
  status text not null constraint status_is_known check (status in ('ok', 'upstream_error', 'cancelled', 'timeout')),
  http_status integer,
  latency_ms integer,
  upstream_request_id text,
  created_at timestamptz not null default now(),
  cache_write_tokens bigint not null default 0
    constraint cache_write_tokens_is_not_negative check (cache_write_tokens >= 0),
  reasoning_tokens bigint not null default 0
    constraint reasoning_tokens_is_within_output check (reasoning_tokens between 0 and output_tokens),
  request_fee_micro_usd bigint not null default 0
    constraint request_fee_is_not_negative check (request_fee_micro_usd >= 0),
  search_context_size text
    constraint search_context_size_is_known check (search_context_size in ('low', 'medium', 'high')),
  rate_id bigint references public.platform_token_rates (id),
  session_id uuid,
  run_id uuid,
  constraint cost_is_null_only_without_price check ((cost_micro_usd is null) = price_missing),
  constraint cached_and_written_are_within_input check (cached_input_tokens + cache_write_tokens <= input_tokens)
);

comment on table public.token_usage is
  'One row per gateway call (unique request_id, so a retried write is a no-op): tokens from the provider''s own '
  'usage fields (estimated, and flagged, where it reported none or less than was delivered), the cost at the price '
  'in force when the call was admitted, and the platform tokens it was billed at the rate then in force. Users '
  'read their own.';

comment on column public.token_usage.debited_tokens is
  'Platform tokens the call was billed: ceil(its exact cost, tokens and request fee, / the platform rate in force '
  'when it was admitted). cost_micro_usd is that cost rounded up to a micro-dollar.';

comment on column public.token_usage.cache_write_tokens is 'Input tokens written to the prompt cache (part of input_tokens).';

comment on column public.token_usage.session_id is
  'The chat session of an agent call (null for a proxy call). No foreign key: usage lands after the call, through '
  'the outbox, and a session deleted meanwhile must not turn it into a dead letter; usage outlives its session.';

comment on column public.token_usage.run_id is
  'The agent run of an agent call (null for a proxy call). No foreign key, as session_id (agent_runs comes with '
  '60_agents).';

comment on column public.token_usage.reasoning_tokens is 'Output tokens spent reasoning (part of output_tokens).';

-- A user's usage over a period (their own rows under RLS, newest first; month-to-date sums of cost_micro_usd read
-- the index alone).
create index token_usage_user_id_idx on public.token_usage (user_id, created_at desc) include (cost_micro_usd);

-- A user's usage per chat session (the seed's idx_token_usage_user_session): what a session cost.
create index token_usage_user_session_idx on public.token_usage (user_id, session_id, created_at desc)
  include (cost_micro_usd) where session_id is not null;

create index token_usage_pricing_id_idx on public.token_usage (pricing_id);

create index token_usage_price_missing_idx on public.token_usage (created_at) where price_missing;

create index token_usage_rate_id_idx on public.token_usage (rate_id);

create trigger _500_roll_up after insert on public.token_usage
  for each row execute function private.tg_token_usage__roll_up();

alter table public.token_usage enable row level security;

create policy "Users can read their own usage" on public.token_usage
  for select to authenticated using ((select auth.uid()) = user_id);

revoke all on public.token_usage from anon, authenticated;
grant select on public.token_usage to authenticated;
-- The service key reads usage but writes it only through the gateway's functions.
revoke insert, update, delete, truncate on public.token_usage from service_role;
