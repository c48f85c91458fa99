create or replace function private.tg_ai_employees__record_version() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  insert into public.ai_employee_versions
    (employee_id, version, system_prompt, tools, provider, model, generation_settings, change_note)
  values (new.id, new.current_version, new.system_prompt, new.tools, new.provider, new.model,
          new.generation_settings, new.change_note);
  return null;
end;
$$;

comment on function private.tg_ai_employees__record_version() is
  'AFTER INSERT on ai_employees, and AFTER UPDATE when current_version changed: records the version in force in '
  'ai_employee_versions. The only writer of that table (security definer: nobody else may insert there).';
