create or replace function private.hired_employee_config(p_hire_id uuid)
returns table (
  hire_id uuid, user_id uuid, employee_id uuid, slug text, is_active boolean, version integer, system_prompt text,
  tools text[], provider text, model text, generation_settings jsonb, nickname text, custom_instructions text
)
language sql stable
security definer
set search_path = ''
as $$
  select h.id, h.user_id, h.employee_id, e.slug, h.is_active, v.version, v.system_prompt, v.tools, v.provider, v.model,
         v.generation_settings, h.nickname, h.custom_instructions
    from public.purchased_employees h
    join public.ai_employees e on e.id = h.employee_id
    join public.ai_employee_versions v on v.employee_id = h.employee_id and v.version = h.pinned_version
   where h.id = p_hire_id
$$;

comment on function private.hired_employee_config(uuid) is
  'What a hire runs with: its pinned version''s system prompt, tools, provider, model and settings, and the user''s '
  'nickname and instructions; no row for an unknown hire. Service only (the chat and agent runtime): the prompt '
  'never reaches a client.';

grant execute on function private.hired_employee_config(uuid) to service_role;
