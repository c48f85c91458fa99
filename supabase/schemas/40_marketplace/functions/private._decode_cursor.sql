create or replace function private._decode_cursor(
  p_cursor text, p_list text, p_fingerprint text, p_key_types text[]
) returns jsonb
language plpgsql stable
set search_path = ''
as $$
declare
  v_cursor jsonb;
  v_keys jsonb;
begin
  if p_cursor is null then
    return null;
  end if;
  begin
    if char_length(p_cursor) > 2048 or p_cursor !~ '^[A-Za-z0-9_-]+$' then
      raise exception 'not a cursor';
    end if;
    v_cursor := convert_from(
      decode(translate(p_cursor, '-_', '+/') || repeat('=', (4 - char_length(p_cursor) % 4) % 4), 'base64'), 'UTF8'
    )::jsonb;
    v_keys := v_cursor -> 'k';
    if jsonb_typeof(v_cursor) <> 'object' or v_cursor ->> 'l' is distinct from p_list
       or v_cursor ->> 'f' is distinct from p_fingerprint or jsonb_typeof(v_keys) <> 'array'
       or jsonb_array_length(v_keys) <> cardinality(p_key_types) then
      raise exception 'not this list''s cursor';
    end if;
    -- Every key a string that casts to its type.
    for i in 1 .. cardinality(p_key_types) loop
      if jsonb_typeof(v_keys -> (i - 1)) <> 'string' then
        raise exception 'key % is not a string', i;
      end if;
      case p_key_types[i]
        when 'numeric' then perform (v_keys ->> (i - 1))::numeric;
        when 'timestamptz' then perform (v_keys ->> (i - 1))::timestamptz;
        when 'uuid' then perform (v_keys ->> (i - 1))::uuid;
        when 'text' then null;
      end case;
    end loop;
  exception when others then
    perform private.raise_api_error(400, 'invalid_cursor',
      'The after cursor is not one this list gave for these filters and this sort', null,
      'Pass next_cursor of the previous page unchanged with the same filters and sort, or none for the first page');
  end;
  return v_keys;
end;
$$;

comment on function private._decode_cursor(text, text, text, text[]) is
  'The sort keys of a cursor private._encode_cursor made for this list and these filters, each checked to cast to '
  'its type in p_key_types (numeric, timestamptz, uuid, text); null for no cursor. invalid_cursor (400) for '
  'anything else: not base64url JSON, another list''s or other filters'' cursor, keys of the wrong number or type.';
