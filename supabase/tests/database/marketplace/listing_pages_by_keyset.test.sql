-- list_ai_employees pages by keyset: for every sort (popular, rating, newest, name) following next_cursor gives every
-- listed employee of the filter exactly once, in the sort's order (ties broken by id), with the last page's cursor
-- null; rows added before the cursor or removed while a client pages never shift or repeat the rest (unlike an
-- offset); category and full-text filters narrow it, facets count every category for the query, coming-soon
-- employees are listed and retired ones are not; cards carry the live analytics and the catalog version of the same
-- snapshot.
begin;
\ir ../../_helpers.psql
\ir ../../_fixtures/marketplace.psql
select plan(22);

select tests.create_marketplace_fixtures();
-- Twelve in pgtap-alpha (names out of slug order), three in pgtap-beta, one retired.
select tests.create_employee('pgtap-key-' || lpad(n::text, 2, '0'), 'pgtap-alpha',
                             case when n = 12 then 'coming_soon' else 'available' end,
                             'Key ' || chr(ascii('a') + (n * 7) % 12),
                             p_description => case when n % 4 = 0 then 'Speaks pgtapquantum fluently.'
                                                   else 'Writes pgtapbanana reports.' end)
  from generate_series(1, 12) n;
select tests.create_employee('pgtap-keyb-' || n, 'pgtap-beta', p_description => 'Speaks pgtapquantum too.')
  from generate_series(1, 3) n;
select tests.create_employee('pgtap-key-retired', 'pgtap-alpha', 'retired');
-- Creation times an hour apart, in an order of their own.
update public.ai_employees set created_at = now() - ((ascii(right(slug, 1)) * 13) % 17) * interval '1 hour'
 where slug like 'pgtap-key%';
-- Popularity and ratings: users hire and rate some of them.
select tests.create_hirer('pgtap-key-u' || n, 'pgtap040_unlimited') from generate_series(1, 6) n;
select count(*) from auth.users u, generate_series(1, 12) n,
       lateral tests.hire_as(u.id, 'pgtap-key-' || lpad(n::text, 2, '0')) h
 where u.email like 'pgtap-key-u%' and n <> 12 and (n + ascii(right(u.email, 13))) % 3 = 0;
insert into public.employee_ratings (user_id, employee_id, stars)
select h.user_id, h.employee_id, 1 + (ascii(right(e.slug, 1)) + ascii(right(u.email, 13))) % 5
  from public.purchased_employees h join public.ai_employees e on e.id = h.employee_id join auth.users u on u.id = h.user_id
 where e.slug like 'pgtap-key-%';
-- Some hires deactivated, so active hires and hires differ.
update public.purchased_employees h set is_active = false
  from public.ai_employees e where e.id = h.employee_id and e.slug in ('pgtap-key-03', 'pgtap-key-07');

-- The expected orders, computed apart from the listing.
create function tests.expected(p_sort text, p_category text default 'pgtap-alpha', p_query text default null)
returns text[]
language sql stable security definer set search_path = ''
as $$
  select array_agg(e.slug order by
           case p_sort when 'popular' then -a.active_hires::numeric when 'rating' then -coalesce(a.average_rating, 0)
                       when 'newest' then -extract(epoch from e.created_at) else 0 end,
           case p_sort when 'popular' then -a.hire_count::numeric when 'rating' then -a.rating_count::numeric else 0 end,
           case p_sort when 'name' then e.name else '' end,
           e.id)
    from public.ai_employees e join private.live_employee_analytics() a on a.employee_id = e.id
   where e.is_listed and (p_category is null or e.category = p_category)
     and (p_query is null or e.search_vector @@ websearch_to_tsquery('english', p_query))
$$;
grant execute on function tests.expected(text, text, text) to anon;

select ok(cardinality(tests.expected('popular')) = 12
          and (select count(distinct (a.active_hires, a.hire_count)) from private.live_employee_analytics() a
                 join public.ai_employees e on e.id = a.employee_id where e.slug like 'pgtap-key-%') >= 3
          and (select count(distinct a.average_rating) from private.live_employee_analytics() a
                 join public.ai_employees e on e.id = a.employee_id where e.slug like 'pgtap-key-%') >= 3,
  'The fixture has 12 listed employees with several popularity and rating values');

-- ============================================================================ every sort, page by page
select tests.authenticate_as_anon();
select is(tests.all_pages('pgtap-alpha', null, 'name', 5), tests.expected('name'),
  'By name, pages of 5 give all 12 in order, each once');
select is(tests.all_pages('pgtap-alpha', null, 'popular', 5), tests.expected('popular'),
  'By popularity (active hires, then hires), pages of 5 give all 12 in order');
select is(tests.all_pages('pgtap-alpha', null, 'rating', 5), tests.expected('rating'),
  'By rating (average, then count), pages of 5 give all 12 in order');
select is(tests.all_pages('pgtap-alpha', null, 'newest', 5), tests.expected('newest'),
  'Newest first, pages of 5 give all 12 in order');
select is(tests.all_pages('pgtap-alpha', null, 'popular', 1), tests.expected('popular'), 'Pages of 1 too');
select is(tests.all_pages('pgtap-alpha', null, 'name', 50), tests.expected('name'), 'And one page of 50');
select is((public.list_ai_employees('pgtap-alpha', null, 'name', null, 12)) -> 'next_cursor', 'null'::jsonb,
  'A page that holds the rest has no next cursor');
select is(tests.all_pages(null, 'pgtapquantum', 'name', 2), tests.expected('name', null, 'pgtapquantum'),
  'A search across categories pages the same way');
select ok(not ('pgtap-key-retired' = any(tests.all_pages(null, 'pgtapbanana', 'name', 50)))
          and 'pgtap-key-12' = any(tests.all_pages('pgtap-alpha', null, 'name', 50)),
  'Coming-soon employees are listed, retired ones are not');

-- ============================================================================ filters and facets
select public.list_ai_employees(null, 'pgtapquantum', 'popular', null, 50) as quantum \gset
select is(tests.slugs(:'quantum'::jsonb), tests.expected('popular', null, 'pgtapquantum'),
  'The full-text query matches the description''s word, in both categories');
select is((:'quantum'::jsonb ->> 'total')::int, 6, 'total counts what the query matches (3 + 3)');
select results_eq(
  format($$select f ->> 'category', (f ->> 'employees')::int from jsonb_array_elements(%L::jsonb -> 'facets') f
            where f ->> 'category' like 'pgtap-%%'$$, :'quantum'),
  $$values ('pgtap-alpha', 3), ('pgtap-beta', 3)$$,
  'The facets count the query''s matches per category');
select is((select count(*)::int from jsonb_array_elements(:'quantum'::jsonb -> 'facets')),
  (select count(*)::int from public.ai_employee_categories), 'The facets name every category, with 0 where none match');
select is(tests.slugs(public.list_ai_employees('pgtap-beta', 'pgtapquantum', 'name', null, 50)),
  array['pgtap-keyb-1', 'pgtap-keyb-2', 'pgtap-keyb-3'], 'A category narrows the query');
select is(tests.slugs(public.list_ai_employees('pgtap-alpha', 'pgtapquantum -fluently', 'name', null, 50)), '{}'::text[],
  'The query takes web search syntax (a minus excludes)');
select public.list_ai_employees('pgtap-alpha', 'pgtapquantum', 'popular', null, 1) as first \gset
select is((:'first'::jsonb -> 'items' -> 0 -> 'analytics') - 'last_hired_at',
  (select jsonb_build_object('hire_count', a.hire_count, 'active_hires', a.active_hires,
                             'active_users_30d', a.active_users_30d, 'rating_count', a.rating_count,
                             'average_rating', a.average_rating, 'total_messages', a.total_messages,
                             'total_runs', a.total_runs)
     from tests.analytics_of(:'first'::jsonb -> 'items' -> 0 ->> 'slug') a),
  'A card carries its employee''s live analytics');
select is((:'first'::jsonb ->> 'catalog_version')::bigint, public.marketplace_catalog_version(),
  'The listing carries the catalog version');
select tests.clear_authentication();

-- ============================================================================ stable while rows change
-- A client reads the first page by name; then an employee that sorts before it is added, one on a later page is
-- retired, one sorting after the cursor is added; the client reads on.
select tests.authenticate_as_anon();
select public.list_ai_employees('pgtap-alpha', null, 'name', null, 4) as page1 \gset
select tests.clear_authentication();
select tests.create_employee('pgtap-key-early', 'pgtap-alpha', p_name => 'Key 0 (sorts first)');
select tests.create_employee('pgtap-key-later', 'pgtap-alpha', p_name => 'Key zz (sorts last)');
update public.ai_employees set status = 'retired'
 where slug = (tests.expected('name'))[7];
select tests.authenticate_as_anon();
create temp table seen as
  select tests.slugs(:'page1'::jsonb) as first_page,
         (select array_agg(s) from (select tests.slugs(public.list_ai_employees('pgtap-alpha', null, 'name',
                                                                                :'page1'::jsonb ->> 'next_cursor', 50))) x(a),
                                   unnest(a) s) as rest;
select tests.clear_authentication();
select is((select first_page || rest from seen),
  (select (tests.slugs(:'page1'::jsonb))
          || array(select s from unnest(tests.expected('name')) with ordinality u(s, o)
                    where o > array_position(tests.expected('name'), (tests.slugs(:'page1'::jsonb))[4]))),
  'The client sees every employee once: the rest after its cursor, the later addition included, the retired one not');
select ok((select not ('pgtap-key-early' = any(rest)) and 'pgtap-key-later' = any(rest) from seen),
  'An employee added before the cursor is not on the next pages (it is on page 1 for a new reader)');
select is((select cardinality(rest) from seen), 12 - 4 - 1 + 1,
  'Nothing is repeated or skipped (8 of the 12 were after page 1, one retired, one added)');

-- The same by popularity: a new hire of an employee already shown does not shift the pages after it.
select tests.authenticate_as_anon();
select public.list_ai_employees('pgtap-alpha', null, 'popular', null, 3) as pop1 \gset
select tests.clear_authentication();
select tests.hire_as(tests.create_hirer('pgtap-key-late-fan', 'pgtap040_unlimited'), (tests.slugs(:'pop1'::jsonb))[1])
  is not null as fan \gset
select tests.authenticate_as_anon();
select is(tests.slugs(public.list_ai_employees('pgtap-alpha', null, 'popular', :'pop1'::jsonb ->> 'next_cursor', 3)),
  (tests.expected('popular'))[4:6], 'By popularity, the next page is the next three, though page 1''s top one gained a hire');
select tests.clear_authentication();

select * from finish();
rollback;
