create or replace function private.tg_ai_employees__next_version() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if tg_op = 'INSERT' then
    new.current_version := 1;
    return new;
  end if;
  if (new.system_prompt, new.tools, new.provider, new.model, new.generation_settings)
     is distinct from (old.system_prompt, old.tools, old.provider, old.model, old.generation_settings) then
    new.current_version := old.current_version + 1;
    if new.change_note is not distinct from old.change_note then
      new.change_note := null;
    end if;
    return new;
  end if;
  if new.current_version is distinct from old.current_version then
    raise exception 'AI employee %: current_version is set by the database (change the prompt, tools, provider, '
      'model or settings to make a version)', old.slug using errcode = '22023';
  end if;
  if new.change_note is distinct from old.change_note then
    raise exception 'AI employee %: a change note belongs to a version; set it in the update that changes the '
      'prompt, tools, provider, model or settings', old.slug using errcode = '22023';
  end if;
  return new;
end;
$$;

comment on function private.tg_ai_employees__next_version() is
  'BEFORE INSERT or UPDATE on ai_employees: version 1 on insert; version N+1 when the system prompt, tools, '
  'provider, model or generation settings change (with the update''s change note, or none); refuses setting '
  'current_version or a change note by themselves. The AFTER trigger records the version.';
