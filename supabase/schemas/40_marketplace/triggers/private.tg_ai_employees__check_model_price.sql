create or replace function private.tg_ai_employees__check_model_price() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if not exists (select 1 from public.model_pricing p
                  where p.provider = new.provider and p.model = new.model
                    and private._in_force(p.effective_from, p.effective_to, now())) then
    raise exception 'AI employee %: % model % has no price in force (public.model_pricing); its calls could not be billed',
      new.slug, new.provider, new.model using errcode = 'PB422';
  end if;
  return new;
end;
$$;

comment on function private.tg_ai_employees__check_model_price() is
  'BEFORE INSERT or UPDATE OF provider, model on ai_employees: refuses (PB422) a provider and model without a price '
  'in force now (private._in_force), since the gateway could not bill its calls.';
