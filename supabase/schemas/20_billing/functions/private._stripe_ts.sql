create or replace function private._stripe_ts(p_epoch jsonb) returns timestamptz
language sql immutable
set search_path = ''
as $$ select case when p_epoch is null or jsonb_typeof(p_epoch) <> 'number' then null
                  else to_timestamp((p_epoch #>> '{}')::double precision) end $$;

comment on function private._stripe_ts(jsonb) is 'A Stripe epoch-seconds JSON number as timestamptz (null stays null).';
