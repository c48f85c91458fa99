create or replace function private.rate_limit_hit(
  p_key text,
  p_limit integer,
  p_window_seconds integer,
  p_cost integer default 1
) returns table (allowed boolean, hits integer, remaining integer, reset_at timestamptz)
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_window_start timestamptz;
  v_window interval;
begin
  if coalesce(p_limit < 1 or p_window_seconds < 1 or p_cost < 1 or char_length(p_key) > 512, true) then
    raise exception 'rate_limit_hit: key, limit, window and cost are required and positive' using errcode = '22023';
  end if;
  v_window := make_interval(secs => p_window_seconds);
  v_window_start := to_timestamp(floor(extract(epoch from clock_timestamp()) / p_window_seconds) * p_window_seconds);

  insert into private.rate_limit_buckets as b (key, window_start, hits, expires_at)
  values (p_key, v_window_start, p_cost, v_window_start + v_window)
  on conflict (key) do update
    set hits = case when b.window_start = excluded.window_start then b.hits + p_cost else p_cost end,
        window_start = excluded.window_start,
        expires_at = excluded.expires_at
  returning b.hits into hits;

  allowed := hits <= p_limit;
  remaining := greatest(p_limit - hits, 0);
  reset_at := v_window_start + v_window;
  return next;
end;
$$;

comment on function private.rate_limit_hit(text, integer, integer, integer) is
  'Counts p_cost hits against p_key in the current fixed window of p_window_seconds (aligned to the epoch) '
  'and says whether the total is within p_limit. Atomic under concurrency (one upsert). Denied hits count '
  'too, as with Upstash''s fixed window. Not idempotent: every call is a hit.';

revoke all on function private.rate_limit_hit(text, integer, integer, integer) from public;

grant execute on function private.rate_limit_hit(text, integer, integer, integer) to service_role;
