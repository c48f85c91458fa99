create table public.ai_employee_categories (
  slug text primary key
    constraint slug_is_kebab_case check (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$' and char_length(slug) <= 64),
  name text not null constraint name_is_short check (char_length(name) between 1 and 100),
  description text constraint description_is_short check (char_length(description) <= 500),
  sort_order integer not null default 0,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

comment on table public.ai_employee_categories is
  'The marketplace''s categories (sales, marketing, …): the facets of list_ai_employees, in sort_order. Readable by '
  'everyone; written only by operators (the service role).';

create trigger _100_timestamps before update on public.ai_employee_categories
  for each row execute function private.tg__set_updated_at();

-- A cache of the listing keys on the catalog version (public.marketplace_catalog_version()).
create trigger _900_bump_catalog_version after insert or update or delete or truncate on public.ai_employee_categories
  for each statement execute function private.tg_marketplace__bump_catalog_version();

alter table public.ai_employee_categories enable row level security;

create policy "Anyone can read the categories" on public.ai_employee_categories
  for select to anon, authenticated using (true);

revoke all on public.ai_employee_categories from anon, authenticated;
grant select on public.ai_employee_categories to anon, authenticated;
