create table public.subscription_plans (
  id text primary key constraint id_is_snake_case check (id ~ '^[a-z][a-z0-9_]*$'),
  name text not null,
  description text,
  monthly_token_allowance bigint not null constraint allowance_is_not_negative check (monthly_token_allowance >= 0),
  price_monthly_cents integer constraint price_monthly_is_not_negative check (price_monthly_cents >= 0),
  price_yearly_cents integer constraint price_yearly_is_not_negative check (price_yearly_cents >= 0),
  stripe_price_monthly text
    constraint subscription_plans_stripe_price_monthly_is_unique unique
    constraint stripe_price_monthly_looks_like_one check (stripe_price_monthly ~ '^price_[A-Za-z0-9_]+$'),
  stripe_price_yearly text
    constraint subscription_plans_stripe_price_yearly_is_unique unique
    constraint stripe_price_yearly_looks_like_one check (stripe_price_yearly ~ '^price_[A-Za-z0-9_]+$'),
  requests_per_minute integer not null constraint rpm_is_positive check (requests_per_minute > 0),
  tokens_per_minute integer not null constraint tpm_is_positive check (tokens_per_minute > 0),
  max_output_tokens integer not null constraint max_output_tokens_is_positive check (max_output_tokens > 0),
  allowed_models text[] not null default '{}',
  max_hired_employees integer constraint max_hired_employees_is_positive check (max_hired_employees > 0),
  sort_order integer not null default 0,
  is_active boolean not null default true,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  max_input_tokens integer not null default 32000
    constraint max_input_tokens_is_positive check (max_input_tokens > 0)
);

comment on table public.subscription_plans is
  'The plans (free, pro, max): display prices, the Stripe price id per billing period (configuration: set '
  'per environment), the monthly token allowance and the limits other features read. Readable by everyone.';

comment on column public.subscription_plans.max_input_tokens is
  'The input a call is held for when the gateway cannot measure it (a remote file or image, a file id): billed '
  'afterwards at what the provider reports.';

comment on column public.subscription_plans.allowed_models is
  'Model ids this plan may call through the LLM gateway; empty means every model (unpriced ones are metered '
  'with a null cost and flagged for an operator).';

create trigger _100_timestamps before update on public.subscription_plans
  for each row execute function private.tg__set_updated_at();

alter table public.subscription_plans enable row level security;

create policy "Anyone can read active plans" on public.subscription_plans
  for select to anon, authenticated using (is_active);

-- A plan taken off sale stays readable by those still on it (their account row names it).
create policy "Users can read the plan they are on" on public.subscription_plans
  for select to authenticated using (id = (select u.plan from public.users u where u.id = (select auth.uid())));

revoke all on public.subscription_plans from anon, authenticated;
grant select on public.subscription_plans to anon, authenticated;

-- A user's plan is one of these.
alter table public.users add constraint plan_is_a_plan foreign key (plan) references public.subscription_plans (id);
create index users_plan_idx on public.users (plan);
