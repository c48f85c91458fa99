create or replace function private._encode_cursor(p_list text, p_fingerprint text, p_keys jsonb) returns text
language sql stable
as $$
  select translate(encode(convert_to(jsonb_build_object('l', p_list, 'f', p_fingerprint, 'k', p_keys)::text, 'UTF8'),
                          'base64'),
                   E'+/=\n', '-_')
$$;

comment on function private._encode_cursor(text, text, jsonb) is
  'A keyset cursor: which list it belongs to (p_list, e.g. the sort), a fingerprint of its filters, and the sort '
  'keys of the last row returned, as unpadded base64url JSON. Opaque to clients; private._decode_cursor reads it.';
