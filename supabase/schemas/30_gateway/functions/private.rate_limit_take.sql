create or replace function private.rate_limit_take(
  p_key text,
  p_limit integer,
  p_window_seconds integer,
  p_need integer,
  p_want integer
) returns table (granted integer, hits integer, remaining integer, reset_at timestamptz)
language plpgsql
set search_path = ''
as $$
declare
  v_window_start timestamptz;
  v_bucket_start timestamptz;
  v_hits integer;
begin
  if coalesce(p_limit < 1 or p_window_seconds < 1 or p_need < 0 or p_want < p_need or char_length(p_key) > 512,
              true) then
    raise exception 'rate_limit_take: key, limit and window are required; 0 <= need <= want' using errcode = '22023';
  end if;
  v_window_start := to_timestamp(floor(extract(epoch from clock_timestamp()) / p_window_seconds) * p_window_seconds);
  reset_at := v_window_start + make_interval(secs => p_window_seconds);

  -- A key seen for the first time gets a row of the previous window (read as empty) to lock; again if the
  -- cleanup job deleted it in between.
  loop
    insert into private.rate_limit_buckets (key, window_start, hits, expires_at)
    values (p_key, v_window_start - make_interval(secs => p_window_seconds), 1, v_window_start)
    on conflict (key) do nothing;
    select b.window_start, b.hits into v_bucket_start, v_hits from private.rate_limit_buckets b where b.key = p_key
       for update;
    exit when found;
  end loop;
  if v_bucket_start <> v_window_start then
    v_hits := 0;
  end if;

  if v_hits + p_need > p_limit then
    granted := 0;
    hits := v_hits + p_need; -- a refused take counts, as a refused hit does (and as Upstash's fixed window does)
  else
    granted := least(p_want, p_limit - v_hits);
    hits := v_hits + granted;
  end if;
  if hits > 0 then
    update private.rate_limit_buckets b
       set window_start = v_window_start, hits = rate_limit_take.hits, expires_at = rate_limit_take.reset_at
     where b.key = p_key;
  end if;
  remaining := greatest(p_limit - hits, 0);
  return next;
end;
$$;

comment on function private.rate_limit_take(text, integer, integer, integer, integer) is
  'Takes up to p_want hits of p_key''s current fixed window (the buckets of private.rate_limit_hit) at once, but '
  'only if at least p_need fit: granted is then between p_need and p_want, else 0 (and the p_need refused hits '
  'count). For leasing limiter headroom to a function instance.';
