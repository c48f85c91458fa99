create table public.model_pricing (
  id bigint generated always as identity primary key,
  provider text not null constraint provider_is_known check (provider in ('openai', 'anthropic', 'google', 'perplexity')),
  model text not null constraint model_is_short check (char_length(model) between 1 and 128),
  input_micro_usd_per_mtok bigint not null constraint input_price_is_not_negative check (input_micro_usd_per_mtok >= 0),
  cached_input_micro_usd_per_mtok bigint
    constraint cached_input_price_is_not_negative check (cached_input_micro_usd_per_mtok >= 0),
  output_micro_usd_per_mtok bigint not null constraint output_price_is_not_negative check (output_micro_usd_per_mtok >= 0),
  effective_from timestamptz not null,
  effective_to timestamptz,
  created_at timestamptz not null default now(),
  cache_write_micro_usd_per_mtok bigint
    constraint cache_write_price_is_not_negative check (cache_write_micro_usd_per_mtok >= 0),
  reasoning_micro_usd_per_mtok bigint
    constraint reasoning_price_is_not_negative check (reasoning_micro_usd_per_mtok >= 0),
  kind text not null default 'generation' constraint kind_is_known check (kind in ('generation', 'embedding')),
  constraint embedding_has_no_output_price check (kind <> 'embedding' or output_micro_usd_per_mtok = 0),
  constraint period_is_ordered check (effective_to is null or effective_to > effective_from),
  constraint model_pricing_periods_do_not_overlap exclude using gist (
    provider with =, model with =, tstzrange(effective_from, effective_to, '[)') with &&
  )
);

comment on table public.model_pricing is
  'Provider list prices with history: micro-dollars per million input / cached input / output tokens, in force '
  'on [effective_from, effective_to). Periods of one model never overlap (exclusion constraint). A price change '
  'closes the current row and adds a new one. Readable by everyone.';

comment on column public.model_pricing.cache_write_micro_usd_per_mtok is
  'Price of input tokens written to the provider''s prompt cache (Anthropic: 1.25 × input for the 5-minute cache); '
  'null: the input price (OpenAI and Gemini cache by themselves at no extra cost per token).';

comment on column public.model_pricing.reasoning_micro_usd_per_mtok is
  'Price of reasoning tokens where the provider bills them apart from output; null: the output price.';

comment on column public.model_pricing.kind is
  'What the model does: generation (text out, billed by input and output tokens) or embedding (vectors out, billed '
  'by input tokens alone: its output price is 0).';

create index model_pricing_lookup_idx on public.model_pricing (provider, model, effective_from desc);

alter table public.model_pricing enable row level security;

create policy "Anyone can read model prices" on public.model_pricing for select to anon, authenticated using (true);

revoke all on public.model_pricing from anon, authenticated;

grant select on public.model_pricing to anon, authenticated;
