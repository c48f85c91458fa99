create type private.usage_charge as (
  pricing_id bigint,
  rate_id bigint,
  cost_micro_usd bigint,
  request_fee_micro_usd bigint,
  platform_tokens bigint
);
comment on type private.usage_charge is
  'What a call is billed (private._charge): the price and platform rate it is billed at (pricing_id null for a '
  'model that never had a price), its cost in micro-dollars rounded up (the request fee included), and the '
  'platform tokens debited for it.';
