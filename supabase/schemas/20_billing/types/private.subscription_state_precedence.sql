create type private.subscription_state_precedence as enum (
  'incomplete_snapshot', 'paid_checkout_session', 'snapshot'
);
comment on type private.subscription_state_precedence is
  'The first key of a subscription state''s precedence, in order: a customer.subscription.* snapshot still '
  'incomplete, a paid checkout session (proof that the subscription got past incomplete), any other snapshot.';
