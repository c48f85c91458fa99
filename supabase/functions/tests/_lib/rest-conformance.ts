// The Data API conformance suite's fixtures and clients. What the product tables do not have (arrays, a
// tsvector, one-to-many and nested embeds with two foreign keys to one table, upsert targets, RPCs of every
// shape) lives in `conformance_*` tables and functions in public, created as superuser with explicit grants and
// RLS, announced with NOTIFY pgrst, and dropped again at the end of each test file.
import { createClient, type SupabaseClient } from "npm:@supabase/supabase-js@2.119.0";
import type { Sql } from "./db.ts";
import { stack } from "./stack.ts";

/**
 * A database type for supabase-js that is not bound to the generated types (the fixtures are not in them),
 * saying the Data API is PostgREST 13 (what hosted projects run; it enables maxAffected()).
 */
// deno-lint-ignore no-explicit-any
type LooseDatabase = { __InternalSupabase: { PostgrestVersion: "13" }; public: any; private: any };
export type LooseClient = SupabaseClient<LooseDatabase>;

const AUTH = { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false };

export function anon(): LooseClient {
  return createClient<LooseDatabase>(stack.apiUrl, stack.anonKey, { auth: AUTH });
}

export function asUser(accessToken: string): LooseClient {
  return createClient<LooseDatabase>(stack.apiUrl, stack.anonKey, {
    auth: AUTH,
    global: { headers: { Authorization: `Bearer ${accessToken}` } },
  });
}

export function asService(): LooseClient {
  return createClient<LooseDatabase>(stack.apiUrl, stack.serviceRoleKey, { auth: AUTH });
}

export const restUrl = `${stack.apiUrl}/rest/v1`;

/** A raw request to the Data API (for what supabase-js cannot express): the anon key unless told otherwise. */
export function rest(
  path: string,
  init: RequestInit & { token?: string | null; apikey?: string } = {},
): Promise<Response> {
  const { token, apikey, ...rest } = init;
  const headers = new Headers(rest.headers);
  headers.set("apikey", apikey ?? stack.anonKey);
  if (token !== null) headers.set("authorization", `Bearer ${token ?? stack.anonKey}`);
  return fetch(`${restUrl}${path}`, { ...rest, headers });
}

/** Waits until the Data API sees (or, with present = false, no longer sees) a table in its schema cache. */
export async function waitForTable(table: string, present = true, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const res = await rest(`/${table}?limit=0`, {
      token: stack.serviceRoleKey,
      apikey: stack.serviceRoleKey,
    });
    const body = await res.text();
    const missing = res.status === 404 && body.includes("PGRST205");
    if (missing !== present) return;
    if (Date.now() > deadline) {
      throw new Error(`the Data API did not ${present ? "see" : "drop"} ${table}: ${res.status} ${body}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Runs DDL as superuser, tells the Data API to reload (NOTIFY pgrst) and waits until `probe` is (not) there. */
export async function changeSchema(sql: Sql, ddl: string, probe: string, present = true): Promise<void> {
  await sql.unsafe(ddl);
  await sql`notify pgrst, 'reload schema'`;
  await waitForTable(probe, present);
}

const TABLES = [
  "conformance_work_labels",
  "conformance_labels",
  "conformance_critiques",
  "conformance_work_details",
  "conformance_works",
  "conformance_writers",
  "conformance_keyed",
  "conformance_memos",
  "conformance_counted",
];

const FUNCTIONS = [
  "conformance_sum(int, int)",
  "conformance_sum(int, int, int)",
  "conformance_scaled(int, int)",
  "conformance_echo_payload(jsonb)",
  "conformance_echo_whole(json)",
  "conformance_works_by_status(text)",
  "conformance_work_titles()",
  "conformance_number_pairs()",
  "conformance_writer(bigint)",
  "conformance_bump(int)",
  "conformance_nap(double precision)",
  "conformance_guc(text)",
  "conformance_fail(text)",
  "conformance_sum_all(int[])",
  "conformance_answer(text)",
];

const DROP = `
  drop view if exists public.conformance_published_works;
  ${FUNCTIONS.map((f) => `drop function if exists public.${f};`).join("\n")}
  drop table if exists ${TABLES.map((t) => `public.${t}`).join(", ")} cascade;
`;

const CREATE = `
create table public.conformance_writers (
  id bigint primary key,
  name text not null,
  country text
);

create table public.conformance_works (
  id bigint primary key,
  title text not null,
  author_id bigint references public.conformance_writers (id),
  editor_id bigint references public.conformance_writers (id),
  price numeric(10, 2),
  tags text[] not null default '{}',
  meta jsonb not null default '{}',
  body text,
  search tsvector generated always as (to_tsvector('english', title || ' ' || coalesce(body, ''))) stored,
  published_on date,
  status text not null default 'draft',
  created_at timestamptz not null default now()
);
create index on public.conformance_works (author_id);
create index on public.conformance_works (editor_id);

create table public.conformance_critiques (
  id bigint primary key,
  item_id bigint not null references public.conformance_works (id) on delete cascade,
  stars int not null constraint stars_are_one_to_five check (stars between 1 and 5),
  reviewer text
);
create index on public.conformance_critiques (item_id);

-- One-to-one: the primary key is the foreign key.
create table public.conformance_work_details (
  item_id bigint primary key references public.conformance_works (id) on delete cascade,
  isbn text not null
);

-- Many-to-many through a junction whose primary key is both foreign keys.
create table public.conformance_labels (id int primary key, label text not null);
create table public.conformance_work_labels (
  item_id bigint references public.conformance_works (id) on delete cascade,
  tag_id int references public.conformance_labels (id) on delete cascade,
  primary key (item_id, tag_id)
);
create index on public.conformance_work_labels (tag_id);

create table public.conformance_keyed (
  id int primary key,
  code text not null constraint conformance_keyed_code_is_unique unique,
  name text,
  hits int not null default 0,
  note text default 'from default'
);

-- Owned rows under real RLS: a user reads and inserts only their own; anon has the grant but no policy.
create table public.conformance_memos (
  id bigint generated always as identity primary key,
  owner_id uuid not null default auth.uid(),
  body text not null
);

create table public.conformance_counted (n int primary key);

insert into public.conformance_writers values
  (1, 'Ursula K. Le Guin', 'US'), (2, 'Stanisław Lem', 'PL'), (3, 'Italo Calvino', 'IT'), (4, 'Anonymous', null);
insert into public.conformance_works (id, title, author_id, editor_id, price, tags, meta, body, published_on, status) values
  (1, 'The Dispossessed', 1, 2, 12.50, '{sf,anarchy}', '{"pages": 387, "lang": "en"}',
      'An ambitious utopia on the moon Anarres', '1974-05-01', 'published'),
  (2, 'The Left Hand of Darkness', 1, 3, 10.00, '{sf,gender}', '{"pages": 304, "lang": "en"}',
      'Winter on the planet Gethen', '1969-03-01', 'published'),
  (3, 'Solaris', 2, 1, 9.99, '{sf,ocean}', '{"pages": 204, "lang": "pl"}',
      'A sentient ocean covers the planet', '1961-01-01', 'published'),
  (4, 'The Cyberiad', 2, null, null, '{robots,humor}', '{"pages": 295, "lang": "pl", "translated": true}',
      'Stories of two robot constructors', '1965-01-01', 'draft'),
  (5, 'Invisible Cities', 3, null, 14.00, '{cities}', '{"pages": 165, "lang": "it"}', null, null, 'published'),
  (6, 'If on a winter''s night a traveler', 3, 2, 15.50, '{}', '{}', 'A novel about reading novels', '1979-06-01',
      'archived');
insert into public.conformance_critiques values
  (1, 1, 5, 'ana'), (2, 1, 4, 'ben'), (3, 1, 3, null), (4, 3, 5, 'ana'), (5, 5, 2, 'cy');
insert into public.conformance_work_details values (1, '978-0061054884'), (3, '978-0156027601');
insert into public.conformance_labels values (1, 'classic'), (2, 'award');
insert into public.conformance_work_labels values (1, 1), (1, 2), (3, 1);
insert into public.conformance_keyed (id, code, name) values (1, 'a', 'alpha'), (2, 'b', 'beta');
insert into public.conformance_counted select generate_series(1, 1100);

-- RLS on, with fixture policies that say who may do what; grants by name (public gives anon and authenticated
-- nothing by default).
do $$
declare
  v_table text;
begin
  foreach v_table in array array['conformance_writers', 'conformance_works', 'conformance_critiques',
    'conformance_work_details', 'conformance_labels', 'conformance_work_labels', 'conformance_keyed',
    'conformance_counted'] loop
    execute format('alter table public.%I enable row level security', v_table);
    execute format('create policy "Conformance fixture: anyone reads" on public.%I for select to anon, authenticated using (true)', v_table);
    execute format('create policy "Conformance fixture: anyone writes" on public.%I for all to anon, authenticated using (true) with check (true)', v_table);
    execute format('grant select, insert, update, delete on public.%I to anon, authenticated, service_role', v_table);
  end loop;
end
$$;

alter table public.conformance_memos enable row level security;
create policy "Owners read their notes" on public.conformance_memos
  for select to authenticated using ((select auth.uid()) = owner_id);
create policy "Owners add their own notes" on public.conformance_memos
  for insert to authenticated with check ((select auth.uid()) = owner_id);
grant select, insert on public.conformance_memos to anon, authenticated, service_role;

create function public.conformance_sum(a int, b int) returns int language sql immutable as $$ select a + b $$;
create function public.conformance_sum(a int, b int, c int) returns int language sql immutable
  as $$ select a + b + c $$;
create function public.conformance_scaled(a int, factor int default 10) returns int language sql immutable
  as $$ select a * factor $$;
create function public.conformance_echo_payload(payload jsonb) returns jsonb language sql immutable as $$ select payload $$;
create function public.conformance_echo_whole(json) returns json language sql immutable as $$ select $1 $$;
create function public.conformance_works_by_status(p_status text) returns setof public.conformance_works
  language sql stable as $$ select * from public.conformance_works where status = p_status $$;
create function public.conformance_work_titles() returns setof text language sql stable
  as $$ select title from public.conformance_works order by id $$;
create function public.conformance_number_pairs() returns table (n int, label text) language sql stable
  as $$ values (1, 'one'), (2, 'two'), (3, 'three') $$;
create function public.conformance_writer(p_id bigint) returns public.conformance_writers language sql stable
  as $$ select * from public.conformance_writers where id = p_id $$;
create function public.conformance_bump(p_id int) returns void language sql volatile
  as $$ update public.conformance_keyed set hits = hits + 1 where id = p_id $$;
create function public.conformance_nap(seconds double precision) returns text language sql volatile
  as $$ select 'slept ' || seconds from (select pg_sleep(seconds)) _ $$;
create function public.conformance_guc(name text) returns text language sql stable
  as $$ select current_setting(name, true) $$;
create function public.conformance_sum_all(nums int[]) returns int language sql immutable
  as $$ select coalesce(sum(n), 0)::int from unnest(nums) n $$;
-- Sets the response's status and headers from SQL, as PostgREST lets a function do (response.status/headers).
create function public.conformance_answer(status text) returns text language plpgsql as $$
begin
  perform set_config('response.status', status, true);
  perform set_config('response.headers', '[{"X-Conformance-Answer": "from sql"}, {"Cache-Control": "no-store"}]', true);
  return 'answered';
end
$$;
create function public.conformance_fail(kind text) returns void language plpgsql as $$
begin
  case kind
    when 'pt' then
      raise sqlstate 'PT402' using message = 'Payment required', detail = 'top up first', hint = 'buy a token pack';
    when 'pgrst' then
      raise sqlstate 'PGRST' using
        message = '{"code":"CX418","message":"The teapot refuses","details":"short and stout","hint":"pour"}',
        detail = '{"status":418,"status_text":"I am a teapot","headers":{"X-Conformance":"yes"}}';
    when 'pgrst_bad' then
      raise sqlstate 'PGRST' using message = 'not json', detail = '{}';
    when 'pb' then
      raise exception 'not enough tokens' using errcode = 'PB402';
    when 'p0001' then
      raise exception 'plain raise';
    else
      raise exception 'unknown kind %', kind using errcode = '22023';
  end case;
end
$$;
-- A view (security invoker: the caller's privileges and RLS apply to the table under it).
create view public.conformance_published_works with (security_invoker = true) as
  select id, title, author_id, price from public.conformance_works where status = 'published';
grant select on public.conformance_published_works to anon, authenticated, service_role;

grant execute on function
  ${FUNCTIONS.map((f) => `public.${f}`).join(",\n  ")}
  to anon, authenticated, service_role;
`;

/** Drops and recreates every conformance fixture, then waits until the Data API has reloaded them. */
export async function installFixtures(sql: Sql): Promise<void> {
  await changeSchema(sql, `${DROP}\n${CREATE}`, "conformance_counted");
}

/** Drops the fixtures and waits until the Data API no longer sees them. */
export async function dropFixtures(sql: Sql): Promise<void> {
  await changeSchema(sql, DROP, "conformance_counted", false);
}
