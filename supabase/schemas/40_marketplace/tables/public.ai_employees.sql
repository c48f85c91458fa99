create table public.ai_employees (
  id uuid primary key default gen_random_uuid(),
  slug text not null constraint ai_employees_slug_is_unique unique
    constraint slug_is_kebab_case check (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$' and char_length(slug) <= 64),
  name text not null constraint name_is_short check (char_length(name) between 1 and 100),
  role text not null constraint role_is_short check (char_length(role) between 1 and 120),
  category text not null references public.ai_employee_categories (slug),
  department text not null constraint department_is_short check (char_length(department) between 1 and 100),
  level text not null constraint level_is_known check (level in ('junior', 'mid', 'senior', 'lead')),
  status text not null default 'coming_soon'
    constraint status_is_known check (status in ('available', 'coming_soon', 'retired')),
  short_description text not null
    constraint short_description_is_short check (char_length(short_description) between 1 and 280),
  long_description text constraint long_description_is_short check (char_length(long_description) <= 10000),
  avatar_url text
    constraint avatar_url_is_https check (avatar_url ~ '^https://' and char_length(avatar_url) <= 2048),
  capabilities text[] not null default '{}'
    constraint capabilities_are_few_and_short check (cardinality(capabilities) <= 20
                                                     and char_length(capabilities::text) <= 4000),
  tools text[] not null default '{}'
    constraint tool_names_are_known_shape check (
      cardinality(tools) <= 32 and tools::text ~ '^\{([a-z][a-z0-9_.]{0,63}(,[a-z][a-z0-9_.]{0,63})*)?\}$'
    ),
  workflows jsonb not null default '[]' constraint workflows_are_a_list check (jsonb_typeof(workflows) = 'array'
                                                                             and pg_column_size(workflows) <= 20000),
  provider text not null
    constraint provider_is_known check (provider in ('openai', 'anthropic', 'google', 'perplexity')),
  model text not null constraint model_is_short check (char_length(model) between 1 and 128),
  generation_settings jsonb not null default '{}'
    constraint generation_settings_are_an_object check (jsonb_typeof(generation_settings) = 'object'
                                                        and pg_column_size(generation_settings) <= 4000),
  display_cost text constraint display_cost_is_short check (char_length(display_cost) <= 64),
  metadata jsonb not null default '{}'
    constraint metadata_is_an_object check (jsonb_typeof(metadata) = 'object' and pg_column_size(metadata) <= 20000),
  current_version integer not null default 1 constraint current_version_is_positive check (current_version > 0),
  system_prompt text not null constraint system_prompt_is_sized check (char_length(system_prompt) between 1 and 50000),
  change_note text constraint change_note_is_short check (char_length(change_note) <= 500),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  -- Generated columns last (pg-delta adds them after the others).
  is_listed boolean not null generated always as (status in ('available', 'coming_soon')) stored,
  search_vector tsvector not null generated always as (private._ai_employee_search_vector(
    name, role, department, short_description, long_description, capabilities
  )) stored
);

comment on table public.ai_employees is
  'The marketplace catalog: an AI employee is a role, a system prompt, tools and a model. Anyone reads the listed '
  'ones (available or coming soon), a user also those they hired; every column but system_prompt (the platform''s '
  'work, never granted to a client role). Written only by operators (the service role). A change of the prompt, '
  'tools, provider, model or settings makes the next version (ai_employee_versions), by trigger.';

comment on column public.ai_employees.slug is 'The stable public id (e.g. sales-sdr): what hire_employee and URLs take.';
comment on column public.ai_employees.is_listed is
  'Whether the marketplace shows it: available or coming soon (a retired one stays readable by its hirers).';
comment on column public.ai_employees.tools is 'The names of the tools it may use (snake_case, dots for namespaces).';
comment on column public.ai_employees.workflows is 'What it can do step by step, for the detail page: a JSON list.';
comment on column public.ai_employees.provider is 'With model: what it runs on; a price in force is required (model_pricing).';
comment on column public.ai_employees.generation_settings is
  'Default generation settings (temperature, max output tokens, …) of the current version.';
comment on column public.ai_employees.display_cost is 'What the marketplace shows as its cost, e.g. "≈ 2k tokens a task".';
comment on column public.ai_employees.current_version is
  'The version in force: set by the database (1, then +1 with each versioned change), never by a writer.';
comment on column public.ai_employees.system_prompt is
  'The current system prompt. Never leaves the server: no client role may read it (column grants).';
comment on column public.ai_employees.change_note is
  'What the current version changed: set it in the update that makes the version (it is copied there); an update '
  'that makes a version without a new note leaves it null.';
comment on column public.ai_employees.search_vector is
  'Full-text search of list_ai_employees (private._ai_employee_search_vector), GIN-indexed.';

create index ai_employees_category_idx on public.ai_employees (category);
create index ai_employees_search_idx on public.ai_employees using gin (search_vector);

create trigger _100_timestamps before update on public.ai_employees
  for each row execute function private.tg__set_updated_at();

create trigger _200_check_model_price before insert or update of provider, model on public.ai_employees
  for each row execute function private.tg_ai_employees__check_model_price();

create trigger _300_next_version before insert or update on public.ai_employees
  for each row execute function private.tg_ai_employees__next_version();

create trigger _500_record_first_version after insert on public.ai_employees
  for each row execute function private.tg_ai_employees__record_version();

create trigger _500_record_next_version after update on public.ai_employees
  for each row when (new.current_version is distinct from old.current_version)
  execute function private.tg_ai_employees__record_version();

create trigger _510_open_analytics after insert on public.ai_employees
  for each row execute function private.tg_ai_employees__open_analytics();

create trigger _900_bump_catalog_version after insert or update or delete or truncate on public.ai_employees
  for each statement execute function private.tg_marketplace__bump_catalog_version();

alter table public.ai_employees enable row level security;

create policy "Anyone can read listed employees" on public.ai_employees
  for select to anon using (is_listed);

-- (Signed-in users read them too, and those they hired: the policy is in public.purchased_employees.sql, which it
-- reads.)

-- Column grants: the whole row is public but the system prompt.
revoke all on public.ai_employees from anon, authenticated;
grant select (id, slug, name, role, category, department, level, status, short_description, long_description,
              avatar_url, capabilities, tools, workflows, provider, model, generation_settings, display_cost, metadata,
              current_version, change_note, created_at, updated_at, is_listed, search_vector)
  on public.ai_employees to anon, authenticated;
