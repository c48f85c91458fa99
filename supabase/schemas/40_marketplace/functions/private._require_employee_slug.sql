create or replace function private._require_employee_slug(p_slug text) returns void
language plpgsql immutable
set search_path = ''
as $$
begin
  if p_slug is null or char_length(p_slug) > 64 or p_slug !~ '^[a-z0-9]+(-[a-z0-9]+)*$' then
    perform private.raise_api_error(400, 'invalid_slug', 'An AI employee''s slug is lowercase words joined by hyphens',
      null, 'Take the slug from list_ai_employees');
  end if;
end;
$$;

comment on function private._require_employee_slug(text) is
  'invalid_slug (400) unless p_slug has the shape of an AI employee''s slug (ai_employees.slug''s constraint): what '
  'the RPCs taking a slug check first, so a 10 KB string is a clear error, not a lookup.';
