-- The gateway's usage records (JSON) as rows: what every settlement path reads. Inlinable.

create or replace function private._usage_records(p_records jsonb)
returns table (
  request_id text, user_id uuid, provider text, model text, input_tokens bigint, cached_input_tokens bigint,
  cache_write_tokens bigint, output_tokens bigint, reasoning_tokens bigint, search_context_size text, status text,
  http_status integer, latency_ms integer, upstream_request_id text, tokens_estimated boolean, lease_id text,
  admitted_at timestamptz
)
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
         coalesce(r.tokens_estimated, false), r.lease_id, coalesce(r.admitted_at, now())
    from jsonb_to_recordset(p_records) as r(
      request_id text, user_id uuid, provider text, model text, input_tokens bigint, cached_input_tokens bigint,
      cache_write_tokens bigint, output_tokens bigint, reasoning_tokens bigint, search_context_size text,
      status text, http_status integer, latency_ms integer, upstream_request_id text, tokens_estimated boolean,
      lease_id text, admitted_at timestamptz)
$$;

comment on function private._usage_records(jsonb) is
  'The gateway''s usage records (JSON) as rows, with token counts made consistent (non-negative; cached and '
  'cache-write within input, reasoning within output) and admitted_at defaulting to now. A record whose counts '
  'are not whole numbers fails here (the gateway normalises them before sending). Inlinable.';
