create or replace function private._reversal_stage(p_kind text, p_status text) returns integer
language sql immutable
set search_path = ''
as $$
  select case
    when p_kind = 'refund' then case
      when p_status in ('failed', 'canceled') then 2
      when p_status = 'succeeded' then 1
      else 0 end -- pending, requires_action
    else case
      when p_status in ('won', 'lost', 'warning_closed', 'prevented') then 2
      when p_status in ('needs_response', 'under_review') then 1
      else 0 end -- warning_needs_response, warning_under_review: an inquiry
  end
$$;

comment on function private._reversal_stage(text, text) is
  'Where a refund or dispute status lies in its life (0 opened, 1 in force, 2 final). Orders events of one '
  'refund or dispute created in the same second.';
