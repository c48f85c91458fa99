create or replace function private.tg_token_usage__roll_up() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  insert into public.usage_daily as d (user_id, day, provider, model, requests, input_tokens, cached_input_tokens,
                                       output_tokens, cost_micro_usd, unpriced_requests)
  values (new.user_id, (new.created_at at time zone 'UTC')::date, new.provider, new.model, 1, new.input_tokens,
          new.cached_input_tokens, new.output_tokens, coalesce(new.cost_micro_usd, 0),
          case when new.price_missing then 1 else 0 end)
  on conflict (user_id, day, provider, model) do update set
    requests = d.requests + 1,
    input_tokens = d.input_tokens + excluded.input_tokens,
    cached_input_tokens = d.cached_input_tokens + excluded.cached_input_tokens,
    output_tokens = d.output_tokens + excluded.output_tokens,
    cost_micro_usd = d.cost_micro_usd + excluded.cost_micro_usd,
    unpriced_requests = d.unpriced_requests + excluded.unpriced_requests;
  return null;
end;
$$;

comment on function private.tg_token_usage__roll_up() is 'AFTER INSERT on token_usage: adds the call to usage_daily.';
