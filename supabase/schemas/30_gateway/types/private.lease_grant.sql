create type private.lease_grant as (
  outcome text,
  message text,
  plan text,
  plan_max_output integer,
  plan_max_input integer,
  requests_per_minute integer,
  tokens_per_minute integer,
  max_output_tokens integer,
  call_tokens bigint,
  hold_tokens bigint,
  pricing_id bigint,
  input_micro_usd_per_mtok bigint,
  cache_write_micro_usd_per_mtok bigint,
  output_micro_usd_per_mtok bigint,
  reasoning_micro_usd_per_mtok bigint,
  rate_micro_usd_per_mtok bigint,
  request_fee_micro_usd bigint,
  granted_tokens bigint,
  granted_requests integer,
  granted_rate_tokens bigint,
  requests_remaining integer,
  rate_tokens_remaining integer,
  limit_value integer,
  limit_reset_at timestamptz,
  balance bigint,
  total_balance bigint
);
comment on type private.lease_grant is
  'private.gateway_lease''s answer. outcome: ok, or why not (unauthorized, forbidden, unpriced, rate_limited, '
  'payment_required) with a message for the client. Then: the plan and its limits; the described call''s capped '
  'output, tokens and hold; the model''s prices, the platform rate and the request fee in force (so the instance '
  'holds its next calls from memory, as private._hold_tokens does); what was granted and what the windows have '
  'left; the unreserved balance after the grant and the balance itself.';
comment on column private.lease_grant.call_tokens is 'The call''s raw tokens (what the tokens-per-minute limit counts): input + max output × choices.';
comment on column private.lease_grant.hold_tokens is 'The most the call can cost, in platform tokens (private._hold_tokens).';
comment on column private.lease_grant.limit_value is 'The limit that refused the call (rate_limited).';
comment on column private.lease_grant.balance is 'The unreserved balance after the grant (balance - held).';
comment on column private.lease_grant.total_balance is 'The balance itself: at or below zero, an instance stops admitting from memory.';
