create or replace function public.list_employee_reviews(
  p_slug text, p_after text default null, p_limit integer default 20
) returns jsonb
language plpgsql stable
security definer
set search_path = ''
as $$
declare
  v_employee_id uuid;
  v_keys jsonb;
  v_at timestamptz;
  v_id uuid;
  v_items jsonb;
  v_next text;
begin
  perform private._require_employee_slug(p_slug);
  if p_limit is null or p_limit not between 1 and 50 then
    perform private.raise_api_error(400, 'invalid_limit', 'A page holds 1 to 50 reviews', null,
      'Ask for 50 at most and follow next_cursor');
  end if;
  select e.id into v_employee_id from public.ai_employees e
   where e.slug = p_slug
     and (e.is_listed or exists (select 1 from public.purchased_employees h
                                  where h.employee_id = e.id and h.user_id = auth.uid()));
  if not found then
    perform private.raise_api_error(404, 'employee_not_found', format('No AI employee is called %s', p_slug));
  end if;
  v_keys := private._decode_cursor(p_after, 'reviews', p_slug, array['timestamptz', 'uuid']);
  if v_keys is not null then
    v_at := (v_keys ->> 0)::timestamptz;
    v_id := (v_keys ->> 1)::uuid;
  end if;

  with page as (
    select r.*, row_number() over (order by r.created_at desc, r.id desc) as n
      from (select r.* from public.employee_ratings r
             where r.employee_id = v_employee_id and (v_keys is null or (r.created_at, r.id) < (v_at, v_id))
             order by r.created_at desc, r.id desc
             limit p_limit + 1) r
  )
  select coalesce((select jsonb_agg(jsonb_build_object(
                            'id', p.id, 'stars', p.stars, 'review', p.review, 'employee_version', p.employee_version,
                            'reviewer_name', (select u.display_name from public.user_profiles u where u.user_id = p.user_id),
                            'created_at', p.created_at, 'updated_at', p.updated_at) order by p.n)
                     from page p where p.n <= p_limit), '[]'),
         (select private._encode_cursor('reviews', p_slug, jsonb_build_array(p.created_at::text, p.id))
            from page p where p.n = p_limit and exists (select 1 from page q where q.n > p_limit))
    into v_items, v_next;

  return jsonb_build_object('items', v_items, 'next_cursor', v_next);
end;
$$;

comment on function public.list_employee_reviews(text, text, integer) is
  'An AI employee''s ratings and reviews, newest first, p_limit (1-50) a page after the cursor p_after: {items: '
  '[{id, stars, review, employee_version, reviewer_name, created_at, updated_at}], next_cursor}. A reviewer is shown '
  'by their profile''s display name at most, never by user id or email. Whose employee may be read: as '
  'get_ai_employee. Reads only; anon may call it.';

grant execute on function public.list_employee_reviews(text, text, integer) to anon, authenticated;
