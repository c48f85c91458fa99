create table public.token_packs (
  id text primary key constraint id_is_snake_case check (id ~ '^[a-z][a-z0-9_]*$'),
  name text not null,
  description text,
  tokens bigint not null constraint tokens_is_positive check (tokens > 0),
  price_cents integer not null constraint price_is_positive check (price_cents > 0),
  currency text not null default 'usd' constraint currency_is_iso4217 check (currency ~ '^[a-z]{3}$'),
  sort_order integer not null default 0,
  is_active boolean not null default true,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

comment on table public.token_packs is
  'One-time token packs sold through Stripe Checkout (payment mode). Readable by everyone.';

create trigger _100_timestamps before update on public.token_packs
  for each row execute function private.tg__set_updated_at();

alter table public.token_packs enable row level security;

create policy "Anyone can read active token packs" on public.token_packs
  for select to anon, authenticated using (is_active);

revoke all on public.token_packs from anon, authenticated;
grant select on public.token_packs to anon, authenticated;
