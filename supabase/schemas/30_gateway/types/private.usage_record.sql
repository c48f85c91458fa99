create type private.usage_record as (
  request_id text,
  user_id uuid,
  provider text,
  model text,
  input_tokens bigint,
  cached_input_tokens bigint,
  cache_write_tokens bigint,
  output_tokens bigint,
  reasoning_tokens bigint,
  search_context_size text,
  status text,
  http_status integer,
  latency_ms integer,
  upstream_request_id text,
  tokens_estimated boolean,
  lease_id text,
  admitted_at timestamptz,
  session_id uuid,
  run_id uuid
);
comment on type private.usage_record is
  'What the gateway reports of one call when it ends (sent as JSON to gateway_settle, gateway_batch_settle and '
  'the usage outbox; read by private._usage_records): who, which model, the tokens the provider reported (or the '
  'gateway estimated: tokens_estimated), how the call ended, and under which lease it was admitted, when.';
comment on column private.usage_record.cached_input_tokens is 'Input tokens read from the prompt cache (part of input_tokens).';
comment on column private.usage_record.cache_write_tokens is 'Input tokens written to the prompt cache (part of input_tokens).';
comment on column private.usage_record.reasoning_tokens is 'Output tokens spent reasoning (part of output_tokens).';
comment on column private.usage_record.search_context_size is 'The search context size of a call that searched (its fee), else null.';
comment on column private.usage_record.lease_id is 'The lease it was admitted under; null for a call admitted on its own (gateway_admit).';
comment on column private.usage_record.admitted_at is 'When it was admitted: the price and rate then in force bill it.';
comment on column private.usage_record.session_id is 'The chat session of an agent call (null for a proxy call).';
comment on column private.usage_record.run_id is 'The agent run of an agent call (null for a proxy call).';
