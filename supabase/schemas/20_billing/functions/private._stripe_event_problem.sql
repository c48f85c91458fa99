-- The envelope of a Stripe event: what handle_stripe_event requires before it records anything.

create or replace function private._stripe_event_problem(p_event jsonb) returns text
language sql
immutable
set search_path = ''
as $$
  -- A missing field is as wrong as a malformed one (null never passes); the cast of created only runs on digits.
  select case
    when jsonb_typeof(p_event) is distinct from 'object' then 'the body is not a JSON object'
    when jsonb_typeof(p_event -> 'id') is distinct from 'string'
         or not coalesce(p_event ->> 'id' ~ '^evt_[A-Za-z0-9_]{1,250}$', false)
      then 'id is not a Stripe event id (evt_…)'
    when jsonb_typeof(p_event -> 'type') is distinct from 'string'
         or not coalesce(p_event ->> 'type' ~ '^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$', false)
         or char_length(p_event ->> 'type') > 100
      then 'type is not a Stripe event type'
    when jsonb_typeof(p_event -> 'created') is distinct from 'number'
         or not coalesce((p_event ->> 'created') ~ '^[0-9]{9,10}$', false)
      then 'created is not a time in epoch seconds'
    when case when (p_event ->> 'created') ~ '^[0-9]{9,10}$'
              then (p_event ->> 'created')::bigint not between 946684800 and 4102444800 end
      then 'created is not a time in epoch seconds'
    when jsonb_typeof(p_event -> 'data' -> 'object') is distinct from 'object' then 'data.object is not an object'
    when p_event ? 'livemode' and jsonb_typeof(p_event -> 'livemode') is distinct from 'boolean'
      then 'livemode is not a boolean'
  end
$$;

comment on function private._stripe_event_problem(jsonb) is
  'What makes a JSON value not a Stripe event we can record (id, type, created in epoch seconds between 2000 '
  'and 2100, data.object, livemode), or null when it is one.';
