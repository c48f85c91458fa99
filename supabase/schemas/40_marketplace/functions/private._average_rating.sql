create or replace function private._average_rating(p_rating_sum bigint, p_rating_count bigint) returns numeric
language sql immutable
as $$ select round(p_rating_sum::numeric / nullif(p_rating_count, 0), 2) $$;

comment on function private._average_rating(bigint, bigint) is
  'The one definition of an AI employee''s average rating: the mean of its stars to two decimals, null while it has '
  'no rating. Used by employee_analytics.average_rating (generated) and the live and recomputed analytics.';
