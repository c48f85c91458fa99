create or replace function private._ai_employee_search_vector(
  p_name text, p_role text, p_department text, p_short_description text, p_long_description text,
  p_capabilities text[]
) returns tsvector
language sql immutable
as $$
  select setweight(to_tsvector('english', coalesce(p_name, '') || ' ' || coalesce(p_role, '')), 'A')
      || setweight(to_tsvector('english', coalesce(p_department, '') || ' '
                                          || coalesce(array_to_string(p_capabilities, ' '), '')), 'B')
      || setweight(to_tsvector('english', coalesce(p_short_description, '')), 'B')
      || setweight(to_tsvector('english', coalesce(p_long_description, '')), 'C')
$$;

comment on function private._ai_employee_search_vector(text, text, text, text, text, text[]) is
  'What the marketplace search matches in an AI employee (ai_employees.search_vector, generated): name and role '
  'weigh most, then department, capabilities and the short description, then the long description. English '
  'stemming. Immutable (array_to_string of text[] is, though Postgres marks it stable). Never reads the system '
  'prompt.';

-- ai_employees.search_vector is computed as the writing role: operators write the catalog with the service key.
grant execute on function private._ai_employee_search_vector(text, text, text, text, text, text[]) to service_role;
