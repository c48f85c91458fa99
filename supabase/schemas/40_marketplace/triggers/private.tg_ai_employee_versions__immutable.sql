create or replace function private.tg_ai_employee_versions__immutable() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if tg_op = 'INSERT' then
    -- Only the trigger on ai_employees, recording the employee's state as it now is.
    if pg_trigger_depth() >= 2 and exists (
      select 1 from public.ai_employees e
       where e.id = new.employee_id and e.current_version = new.version
         and e.system_prompt = new.system_prompt and e.tools = new.tools and e.provider = new.provider
         and e.model = new.model and e.generation_settings = new.generation_settings
         and e.change_note is not distinct from new.change_note
    ) then
      return new;
    end if;
    raise exception 'ai_employee_versions are made by the database when an AI employee changes (update '
      'public.ai_employees), never inserted' using errcode = 'PB405';
  end if;
  -- Deleting the employee cascades here; that is the only delete allowed.
  if tg_op = 'DELETE' and not exists (select 1 from public.ai_employees e where e.id = old.employee_id) then
    return old;
  end if;
  raise exception 'ai_employee_versions is immutable history' using errcode = 'PB405';
end;
$$;

comment on function private.tg_ai_employee_versions__immutable() is
  'BEFORE INSERT, UPDATE, DELETE and TRUNCATE on ai_employee_versions: accepts only the row the ai_employees trigger '
  'records (the employee''s current state) and the cascade of a deleted employee; refuses (PB405) anything else.';
