create or replace function private._usage_records(p_records jsonb) returns setof private.usage_record
language sql stable
as $$
  select r.request_id, r.user_id, r.provider, r.model,
         greatest(coalesce(r.input_tokens, 0), 0),
         least(greatest(coalesce(r.cached_input_tokens, 0), 0), greatest(coalesce(r.input_tokens, 0), 0)),
         least(greatest(coalesce(r.cache_write_tokens, 0), 0),
               greatest(coalesce(r.input_tokens, 0), 0)
                 - least(greatest(coalesce(r.cached_input_tokens, 0), 0), greatest(coalesce(r.input_tokens, 0), 0))),
         greatest(coalesce(r.output_tokens, 0), 0),
         least(greatest(coalesce(r.reasoning_tokens, 0), 0), greatest(coalesce(r.output_tokens, 0), 0)),
         r.search_context_size, r.status, r.http_status, r.latency_ms, r.upstream_request_id,
         coalesce(r.tokens_estimated, false), r.lease_id, coalesce(r.admitted_at, now()),
         r.session_id, r.run_id
    from jsonb_populate_recordset(null::private.usage_record, p_records) r
$$;

comment on function private._usage_records(jsonb) is
  'The gateway''s usage records (JSON) as private.usage_record rows, what every settlement path reads, with token '
  'counts made consistent (non-negative; cached and cache-write within input, reasoning within output) and '
  'admitted_at defaulting to now. A record whose counts are not whole numbers fails here (the gateway normalises '
  'them before sending). Inlinable (no SET clause; every name in full).';
