create or replace function private._reversal_stage(p_kind text, p_status text) returns private.reversal_life_stage
language sql immutable
set search_path = ''
as $$
  select case
    when p_kind = 'refund' then case
      when p_status in ('failed', 'canceled') then 'final'
      when p_status = 'succeeded' then 'in_force'
      else 'opened' end -- pending, requires_action
    else case
      when p_status in ('won', 'lost', 'warning_closed', 'prevented') then 'final'
      when p_status in ('needs_response', 'under_review') then 'in_force'
      else 'opened' end -- warning_needs_response, warning_under_review: an inquiry
  end::private.reversal_life_stage
$$;

comment on function private._reversal_stage(text, text) is
  'The life stage of a refund or dispute status (private.reversal_life_stage).';
