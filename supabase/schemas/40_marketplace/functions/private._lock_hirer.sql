create or replace function private._lock_hirer(p_user_id uuid) returns public.subscription_plans
language plpgsql
set search_path = ''
as $$
declare
  v_plan public.subscription_plans;
begin
  perform 1 from public.users u where u.id = p_user_id for no key update;
  if not found then
    perform private.raise_api_error(401, 'not_authenticated', 'There is no account for this session; sign in again');
  end if;
  select p.* into v_plan from public.users u join public.subscription_plans p on p.id = u.plan where u.id = p_user_id;
  return v_plan;
end;
$$;

comment on function private._lock_hirer(uuid) is
  'Locks the user''s public.users row (FOR NO KEY UPDATE, held to the end of the transaction) and returns their '
  'plan: what serialises one user''s hires, so counting their active hires and writing one is a single step. Other '
  'users'' hires, and foreign keys to the row, never wait on it. not_authenticated (401) when there is no account.';
