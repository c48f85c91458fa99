create table public.notifications (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references public.users (id) on delete cascade,
  kind text not null constraint kind_is_snake_case check (kind ~ '^[a-z][a-z0-9_]*$'),
  title text not null,
  body text,
  data jsonb not null default '{}',
  dedupe_key text constraint notifications_dedupe_key_is_unique unique,
  read_at timestamptz,
  created_at timestamptz not null default now()
);

comment on table public.notifications is
  'Messages for a user (payment failed, usage alerts, …). dedupe_key makes a notification from a replayed '
  'event appear once. The user reads them and marks them read.';

create index notifications_user_id_idx on public.notifications (user_id, created_at desc);

alter table public.notifications enable row level security;

create policy "Users can read their own notifications" on public.notifications
  for select to authenticated using ((select auth.uid()) = user_id);

create policy "Users can mark their own notifications read" on public.notifications
  for update to authenticated using ((select auth.uid()) = user_id) with check ((select auth.uid()) = user_id);

revoke all on public.notifications from anon, authenticated;
grant select on public.notifications to authenticated;
grant update (read_at) on public.notifications to authenticated;
