create table public.model_request_fees (
  id bigint generated always as identity primary key,
  provider text not null constraint provider_is_known check (provider in ('openai', 'anthropic', 'google', 'perplexity')),
  model text not null constraint model_is_short check (char_length(model) between 1 and 128),
  search_context_size text not null
    constraint search_context_size_is_known check (search_context_size in ('low', 'medium', 'high')),
  micro_usd_per_request bigint not null constraint fee_is_not_negative check (micro_usd_per_request >= 0),
  effective_from timestamptz not null,
  effective_to timestamptz,
  created_at timestamptz not null default now(),
  constraint period_is_ordered check (effective_to is null or effective_to > effective_from),
  constraint model_request_fees_periods_do_not_overlap exclude using gist (
    provider with =, model with =, search_context_size with =, tstzrange(effective_from, effective_to, '[)') with &&
  )
);

comment on table public.model_request_fees is
  'Fees a provider bills per request on top of tokens, with history: Perplexity''s web search, by search context '
  'size (low is the default). Readable by everyone.';

create index model_request_fees_lookup_idx on public.model_request_fees (provider, model, search_context_size, effective_from desc);

alter table public.model_request_fees enable row level security;

create policy "Anyone can read model request fees" on public.model_request_fees
  for select to anon, authenticated using (true);

revoke all on public.model_request_fees from anon, authenticated;
grant select on public.model_request_fees to anon, authenticated;
