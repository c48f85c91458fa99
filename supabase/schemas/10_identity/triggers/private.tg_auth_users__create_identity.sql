create or replace function private.tg_auth_users__create_identity() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  insert into public.users (id, email) values (new.id, new.email);
  insert into public.user_profiles (user_id, display_name, avatar_url)
  values (
    new.id,
    left(coalesce(nullif(btrim(new.raw_user_meta_data ->> 'full_name'), ''),
                  nullif(btrim(new.raw_user_meta_data ->> 'name'), '')), 100),
    case when new.raw_user_meta_data ->> 'avatar_url' ~ '^https://'
      then left(new.raw_user_meta_data ->> 'avatar_url', 2048) end
  );
  insert into public.user_settings (user_id) values (new.id);
  return new;
end;
$$;

comment on function private.tg_auth_users__create_identity() is
  'AFTER INSERT on auth.users: creates the public.users, user_profiles and user_settings rows of the new '
  'user (name and avatar from the sign-up metadata). Security definer: Auth inserts as its own role.';
