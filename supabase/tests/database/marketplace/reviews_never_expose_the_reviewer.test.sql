-- Public reviews never expose who wrote them: list_employee_reviews (anon may call it) shows stars, review, the
-- version rated and the reviewer's display name, never a user id or email, in any field; the base table is readable
-- by its author only; pages follow a keyset cursor (newest first, no row twice); bad input is a clear 400.
begin;
\ir ../../_helpers.psql
\ir ../../_fixtures/marketplace.psql
select plan(15);

select tests.create_marketplace_fixtures();
select tests.create_employee('pgtap-rev-kit') as kit \gset
select tests.create_employee('pgtap-rev-lou') is not null as lou \gset
create temp table reviewers as
  select n, tests.create_hirer('pgtap-rev-r' || n) as id from generate_series(1, 5) n;
select count(*) from reviewers r, tests.hire_as(r.id, 'pgtap-rev-kit') h;
-- Ratings written a minute apart (the newest last), each by its author.
insert into public.employee_ratings (user_id, employee_id, stars, review, created_at)
select r.id, :'kit', 1 + r.n % 5, 'Review number ' || r.n, now() - (6 - r.n) * interval '1 minute' from reviewers r;

select tests.authenticate_as_anon();
select public.list_employee_reviews('pgtap-rev-kit', null, 2) as page1 \gset
select is(jsonb_array_length(:'page1'::jsonb -> 'items'), 2, 'A page holds the limit asked for');
select is((select array_agg(i ->> 'review' order by o) from jsonb_array_elements(:'page1'::jsonb -> 'items') with ordinality t(i, o)),
  array['Review number 5', 'Review number 4'], 'Newest first');
select is((select array_agg(k order by k) from (select distinct jsonb_object_keys(i) k
                                                  from jsonb_array_elements(:'page1'::jsonb -> 'items') i) x),
  array['created_at', 'employee_version', 'id', 'review', 'reviewer_name', 'stars', 'updated_at'],
  'A review shows exactly these fields: no user id, no email');
select is((:'page1'::jsonb -> 'items' -> 0 ->> 'reviewer_name'), 'Reviewer pgtap-rev-r5',
  'The reviewer is shown by their display name');
select public.list_employee_reviews('pgtap-rev-kit', :'page1'::jsonb ->> 'next_cursor', 2) as page2 \gset
select public.list_employee_reviews('pgtap-rev-kit', :'page2'::jsonb ->> 'next_cursor', 2) as page3 \gset
select is((select array_agg(i ->> 'review' order by p, o)
             from (select 2 p, :'page2'::jsonb j union all select 3, :'page3'::jsonb) pages,
                  jsonb_array_elements(j -> 'items') with ordinality t(i, o)),
  array['Review number 3', 'Review number 2', 'Review number 1'],
  'The next pages follow the cursor without repeating a review');
select is(:'page3'::jsonb -> 'next_cursor', 'null'::jsonb, 'The last page has no next cursor');
select is(tests.api_error_code($$select public.list_employee_reviews('pgtap-rev-kit', 'not-a-cursor')$$),
  'invalid_cursor 400', 'A cursor that is not ours is invalid_cursor (400)');
select is(tests.api_error_code(format($$select public.list_employee_reviews('pgtap-rev-kit', %L)$$,
                                      (public.list_ai_employees('pgtap-alpha', null, 'name', null, 1)) ->> 'next_cursor')),
  'invalid_cursor 400', 'A cursor of the employee listing is not a reviews cursor');
select is(tests.api_error_code($$select public.list_employee_reviews('pgtap-rev-kit', null, 51)$$), 'invalid_limit 400',
  'More than 50 a page is invalid_limit (400)');
select is(tests.api_error_code($$select public.list_employee_reviews('pgtap-rev-nobody')$$), 'employee_not_found 404',
  'Reviews of an unknown employee are employee_not_found (404)');
select throws_ok($$select * from public.employee_ratings$$, '42501', null, 'anon cannot read the ratings themselves');
select tests.clear_authentication();
select is((select count(*)::int from reviewers r join auth.users u on u.id = r.id
            where :'page1'::jsonb::text like '%' || r.id || '%' or :'page1'::jsonb::text like '%' || u.email || '%'),
  0, 'No reviewer''s user id or email appears anywhere in the page anon read');
select id as r1 from reviewers where n = 1 \gset

select tests.authenticate_as(:'r1');
select is((select count(*)::int from public.employee_ratings), 1,
  'A reviewer reads only their own rating in the table (others'' ids stay hidden)');
select is(jsonb_array_length(public.list_employee_reviews('pgtap-rev-kit', null, 50) -> 'items'), 5,
  'Through list_employee_reviews they read every review');
select tests.clear_authentication();

select tests.authenticate_as_anon();
select unalike(public.get_ai_employee('pgtap-rev-kit')::text, '%' || :'r1' || '%',
  'The detail page shows no reviewer id either');
select tests.clear_authentication();

select * from finish();
rollback;
