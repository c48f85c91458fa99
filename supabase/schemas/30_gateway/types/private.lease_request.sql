create type private.lease_request as (
  user_id uuid,
  provider text,
  lease_id text,
  model text,
  input_estimate bigint,
  requested_output integer,
  choices integer,
  input_unbounded boolean,
  search_context_size text,
  calls integer,
  have_tokens bigint,
  have_requests integer,
  have_rate_tokens bigint,
  ahead boolean,
  check_limits boolean,
  hold_seconds integer
);
comment on type private.lease_request is
  'What a function instance asks private.gateway_lease for: a lease (lease_id) for one user, sized for `calls` '
  'calls like the one described (model, input estimate, requested output, choices, an input it cannot measure, a '
  'search context size), given what it already has (have_*). Null fields take their defaults.';
comment on column private.lease_request.requested_output is 'The call''s max output tokens (capped at the plan''s); null: the plan''s max; 0: no output (embeddings, token counts).';
comment on column private.lease_request.choices is 'Completions asked for (n / candidateCount); default 1.';
comment on column private.lease_request.input_unbounded is 'The input holds what the gateway cannot measure (a remote file, a file id): held as the plan''s max input. Default false.';
comment on column private.lease_request.calls is 'Calls'' worth of budget and limiter headroom to lease; default 1.';
comment on column private.lease_request.have_tokens is 'Platform tokens the instance already holds unused under this lease; default 0.';
comment on column private.lease_request.have_requests is 'Requests of the current window the instance already has; default 0.';
comment on column private.lease_request.have_rate_tokens is 'Tokens of the current window the instance already has; default 0.';
comment on column private.lease_request.ahead is 'Topping up before a call needs it (nothing is refused for lack of it); default false.';
comment on column private.lease_request.check_limits is 'Whether the requests- and tokens-per-minute limits are counted here (false when Upstash counts them); default true.';
comment on column private.lease_request.hold_seconds is 'How long the lease''s hold outlives its last top-up (at least 60); default 900.';
