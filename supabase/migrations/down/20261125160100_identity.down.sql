-- Reverts 20261125160100_identity.sql.
drop trigger _500_sync_email on auth.users;
drop trigger _500_create_identity on auth.users;
drop function private.tg_auth_users__sync_email();
drop function private.tg_auth_users__create_identity();
drop table public.user_settings;
drop table public.user_profiles;
drop table public.users;
