create or replace function public.get_ai_employee(p_slug text) returns jsonb
language plpgsql stable
security definer
set search_path = ''
as $$
declare
  v_employee public.ai_employees;
  v_analytics public.employee_analytics;
begin
  perform private._require_employee_slug(p_slug);
  -- Who may read it: as the policies of ai_employees say (listed, or hired by the caller).
  select e.* into v_employee from public.ai_employees e
   where e.slug = p_slug
     and (e.is_listed or exists (select 1 from public.purchased_employees h
                                  where h.employee_id = e.id and h.user_id = auth.uid()));
  if not found then
    perform private.raise_api_error(404, 'employee_not_found', format('No AI employee is called %s', p_slug));
  end if;
  select a.* into v_analytics from private.live_employee_analytics() a where a.employee_id = v_employee.id;
  return private._ai_employee_card(v_employee, v_analytics) || jsonb_build_object(
    'long_description', v_employee.long_description,
    'workflows', v_employee.workflows,
    'generation_settings', v_employee.generation_settings,
    'metadata', v_employee.metadata,
    'change_note', v_employee.change_note,
    'versions', (select coalesce(jsonb_agg(jsonb_build_object('version', v.version, 'provider', v.provider,
                                                              'model', v.model, 'change_note', v.change_note,
                                                              'created_at', v.created_at)
                                           order by v.version desc), '[]')
                   from public.ai_employee_versions v where v.employee_id = v_employee.id)
  );
end;
$$;

comment on function public.get_ai_employee(text) is
  'One AI employee''s detail page: its card (exact analytics) plus the long description, workflows, settings, '
  'metadata and its version history (change notes; never a prompt). Listed ones for anyone, and a retired one for '
  'its hirers; employee_not_found (404) otherwise, invalid_slug (400) for a string that is no slug.';

grant execute on function public.get_ai_employee(text) to anon, authenticated;
