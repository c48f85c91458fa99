create type private.subscription_life_stage as enum ('incomplete', 'live', 'ended');
comment on type private.subscription_life_stage is
  'Where a Stripe subscription status lies in its life, in order: incomplete (first payment not made), live '
  '(active, trialing, past_due, unpaid, paused), ended (canceled, incomplete_expired). Breaks ties between events '
  'of one subscription created in the same second.';
