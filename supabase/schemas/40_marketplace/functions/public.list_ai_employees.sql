create or replace function public.list_ai_employees(
  p_category text default null,
  p_query text default null,
  p_sort text default 'popular',
  p_after text default null,
  p_limit integer default 20
) returns jsonb
language plpgsql stable
security definer
set search_path = ''
as $$
declare
  v_query text := nullif(btrim(p_query), '');
  v_tsquery tsquery;
  v_fingerprint text;
  v_keys jsonb;
  v_k1 numeric;
  v_k2 numeric;
  v_k3 text;
  v_id uuid;
  v_items jsonb;
  v_next text;
  v_total bigint;
  v_facets jsonb;
begin
  if p_sort is null or p_sort not in ('popular', 'rating', 'newest', 'name') then
    perform private.raise_api_error(400, 'invalid_sort', format('There is no sort %s', left(p_sort, 40)), null,
      'Sort by popular, rating, newest or name');
  end if;
  if p_limit is null or p_limit not between 1 and 50 then
    perform private.raise_api_error(400, 'invalid_limit', 'A page holds 1 to 50 AI employees', null,
      'Ask for 50 at most and follow next_cursor');
  end if;
  if char_length(p_query) > 200 then
    perform private.raise_api_error(400, 'query_too_long', 'A search is at most 200 characters');
  end if;
  if p_category is not null
     and not exists (select 1 from public.ai_employee_categories c where c.slug = p_category) then
    perform private.raise_api_error(400, 'unknown_category', format('There is no category %s', left(p_category, 64)),
      null, 'The facets of an unfiltered listing name every category');
  end if;
  if v_query is not null then
    v_tsquery := websearch_to_tsquery('english', v_query);
  end if;
  -- A cursor belongs to one sort and one set of filters.
  v_fingerprint := left(md5(coalesce(p_category, '') || chr(31) || coalesce(v_query, '')), 16);
  v_keys := private._decode_cursor(p_after, p_sort, v_fingerprint, array['numeric', 'numeric', 'text', 'uuid']);
  if v_keys is not null then
    v_k1 := (v_keys ->> 0)::numeric;
    v_k2 := (v_keys ->> 1)::numeric;
    v_k3 := v_keys ->> 2;
    v_id := (v_keys ->> 3)::uuid;
  end if;

  -- Every sort is the ascending order of (k1, k2, k3, id): descending keys negated, id last so it is total.
  --   popular: most active hires, then most hires    rating: best average, then most ratings
  --   newest: latest created_at                      name: by name
  with candidates as (
    select e.id, e.category,
           case p_sort when 'popular' then -a.active_hires::numeric
                       when 'rating' then -coalesce(a.average_rating, 0)
                       when 'newest' then -extract(epoch from e.created_at)
                       else 0 end as k1,
           case p_sort when 'popular' then -a.hire_count::numeric
                       when 'rating' then -a.rating_count::numeric
                       else 0 end as k2,
           case p_sort when 'name' then e.name else '' end as k3,
           a as analytics
      from public.ai_employees e
      join private.live_employee_analytics() a on a.employee_id = e.id
     where e.is_listed and (v_tsquery is null or e.search_vector @@ v_tsquery)
  ), page as (
    select c.*, row_number() over (order by c.k1, c.k2, c.k3, c.id) as n
      from (select c.* from candidates c
             where (p_category is null or c.category = p_category)
               and (v_keys is null or (c.k1, c.k2, c.k3, c.id) > (v_k1, v_k2, v_k3, v_id))
             order by c.k1, c.k2, c.k3, c.id
             limit p_limit + 1) c
  )
  -- Cards for the page's rows only, from the analytics row each candidate already carries: the live numbers are
  -- computed once per call, and a plain row lets _ai_employee_card inline.
  select coalesce((select jsonb_agg(private._ai_employee_card(e, p.analytics) order by p.n)
                     from page p
                     join public.ai_employees e on e.id = p.id
                    where p.n <= p_limit), '[]'),
         (select private._encode_cursor(p_sort, v_fingerprint, jsonb_build_array(p.k1::text, p.k2::text, p.k3, p.id))
            from page p where p.n = p_limit and exists (select 1 from page q where q.n > p_limit)),
         (select count(*) from candidates c where p_category is null or c.category = p_category),
         (select coalesce(jsonb_agg(jsonb_build_object('category', g.slug, 'name', g.name, 'employees', coalesce(f.n, 0))
                                    order by g.sort_order, g.slug), '[]')
            from public.ai_employee_categories g
            left join (select c.category, count(*) as n from candidates c group by c.category) f on f.category = g.slug)
    into v_items, v_next, v_total, v_facets;

  return jsonb_build_object(
    'catalog_version', public.marketplace_catalog_version(),
    'sort', p_sort,
    'category', p_category,
    'query', v_query,
    'total', v_total,
    'items', v_items,
    'next_cursor', v_next,
    'facets', v_facets
  );
end;
$$;

comment on function public.list_ai_employees(text, text, text, text, integer) is
  'The marketplace listing: listed AI employees (available or coming soon), filtered by category and full-text '
  'query (websearch syntax), sorted by popular, rating, newest or name, one page of p_limit (1-50) after the '
  'cursor p_after. Keyset pagination: a page starts after the last row of the previous one, so rows added or '
  'removed elsewhere never shift it. Returns {catalog_version, sort, category, query, total, items: [card], '
  'next_cursor (null on the last page), facets: [{category, name, employees}] for the query over every category}; '
  'each card carries exact analytics. All in one snapshot. Bad input is a 400 (invalid_sort, invalid_limit, '
  'query_too_long, unknown_category, invalid_cursor). Reads only; anon may call it.';

grant execute on function public.list_ai_employees(text, text, text, text, integer) to anon, authenticated;
