create or replace function private._reversal_takes_back(p_kind text, p_status text) returns boolean
language sql immutable
set search_path = ''
as $$
  select case when p_kind = 'refund' then p_status in ('pending', 'requires_action', 'succeeded')
              else p_status in ('needs_response', 'under_review', 'lost') end
$$;

comment on function private._reversal_takes_back(text, text) is
  'Whether a refund or dispute in this status takes the tokens it reverses back: a refund unless it failed or '
  'was canceled; a dispute once the money is withdrawn (needs_response, under_review) and when lost. An '
  'inquiry (warning_*) takes nothing; a won dispute gives back what it took.';
