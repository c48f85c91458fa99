-- Bad input to the browsing RPCs is a clear 400 in the Data API's shape (or a 404 for what does not exist), and
-- writes nothing: an unknown or missing sort, a limit outside 1-50 (10 000), a query of 10 KB, an unknown category, a
-- cursor that is not ours (garbage, another sort's, another filter's, forged keys), a slug that is no slug.
begin;
\ir ../../_helpers.psql
\ir ../../_fixtures/marketplace.psql
select plan(22);

select tests.create_marketplace_fixtures();
select tests.create_employee('pgtap-bad-' || n) from generate_series(1, 3) n;
select tests.create_employee('pgtap-bad-gone', p_status => 'retired');

create temp table before_calls as
  select public.marketplace_catalog_version() as version,
         (select count(*) from private.employee_analytics_deltas) as deltas,
         (select count(*) from public.purchased_employees) as hires;

select tests.authenticate_as_anon();
select public.list_ai_employees('pgtap-alpha', null, 'name', null, 1) ->> 'next_cursor' as name_cursor \gset

select is(tests.api_error($$select public.list_ai_employees(p_sort => 'cheapest')$$),
  jsonb_build_object('code', 'invalid_sort', 'message', 'There is no sort cheapest', 'details', null,
                     'hint', 'Sort by popular, rating, newest or name', 'status', 400),
  'An unknown sort is invalid_sort (400), saying which sorts there are');
select is(tests.api_error_code($$select public.list_ai_employees(p_sort => null)$$), 'invalid_sort 400',
  'No sort is invalid_sort (400)');
select is(tests.api_error_code($$select public.list_ai_employees(p_limit => 10000)$$), 'invalid_limit 400',
  'A limit of 10 000 is invalid_limit (400)');
select is(tests.api_error_code($$select public.list_ai_employees(p_limit => 51)$$), 'invalid_limit 400',
  'A limit of 51 is invalid_limit (400)');
select is(tests.api_error_code($$select public.list_ai_employees(p_limit => 0)$$), 'invalid_limit 400',
  'A limit of 0 is invalid_limit (400)');
select is(tests.api_error_code($$select public.list_ai_employees(p_limit => null)$$), 'invalid_limit 400',
  'No limit is invalid_limit (400)');
select is(tests.api_error_code(format('select public.list_ai_employees(p_query => %L)', repeat('sales ', 1707))),
  'query_too_long 400', 'A 10 KB query is query_too_long (400)');
select is(tests.api_error_code($$select public.list_ai_employees(p_category => 'pgtap-nowhere')$$),
  'unknown_category 400', 'An unknown category is unknown_category (400)');
select is(tests.api_error_code(format('select public.list_ai_employees(p_category => %L)', repeat('c', 10240))),
  'unknown_category 400', 'A 10 KB category is unknown_category (400)');
select is(tests.api_error_code($$select public.list_ai_employees(p_after => 'garbage!')$$), 'invalid_cursor 400',
  'A cursor that is not base64url is invalid_cursor (400)');
select is(tests.api_error_code(format('select public.list_ai_employees(p_after => %L)', repeat('A', 10240))),
  'invalid_cursor 400', 'A 10 KB cursor is invalid_cursor (400)');
select is(tests.api_error_code(format($$select public.list_ai_employees('pgtap-alpha', null, 'popular', %L, 1)$$, :'name_cursor')),
  'invalid_cursor 400', 'A cursor of another sort is invalid_cursor (400)');
select is(tests.api_error_code(format($$select public.list_ai_employees('pgtap-beta', null, 'name', %L, 1)$$, :'name_cursor')),
  'invalid_cursor 400', 'A cursor of another category is invalid_cursor (400)');
select is(tests.api_error_code(format($$select public.list_ai_employees('pgtap-alpha', 'x', 'name', %L, 1)$$, :'name_cursor')),
  'invalid_cursor 400', 'A cursor of another query is invalid_cursor (400)');
select is(tests.api_error_code(format($$select public.list_ai_employees('pgtap-alpha', null, 'name', %L, 1)$$,
  translate(encode(convert_to(jsonb_set(convert_from(decode(translate(:'name_cursor', '-_', '+/')
                                                                || repeat('=', (4 - length(:'name_cursor') % 4) % 4), 'base64'), 'UTF8')::jsonb,
                                           '{k,3}', '"not-a-uuid"')::text, 'UTF8'), 'base64'), E'+/=\n', '-_'))),
  'invalid_cursor 400', 'A forged cursor (this list''s, but a key that is no id) is invalid_cursor (400)');
select is(tests.api_error_code(format($$select public.list_ai_employees('pgtap-alpha', null, 'name', %L, 1)$$, :'name_cursor')),
  'no error', 'The cursor itself, with its own sort and filters, is fine');

select is(tests.api_error_code(format('select public.get_ai_employee(%L)', repeat('a', 10240))), 'invalid_slug 400',
  'get_ai_employee of a 10 KB slug is invalid_slug (400)');
select is(tests.api_error_code($$select public.get_ai_employee('pgtap-bad-nobody')$$), 'employee_not_found 404',
  'get_ai_employee of an unknown employee is employee_not_found (404)');
select is(tests.api_error_code($$select public.get_ai_employee('pgtap-bad-gone')$$), 'employee_not_found 404',
  'A retired employee is not found for anon');
select is(tests.api_error_code($$select public.list_employee_reviews('pgtap-bad-1', null, 0)$$), 'invalid_limit 400',
  'list_employee_reviews with a limit of 0 is invalid_limit (400)');
select is(tests.api_error_code($$select public.list_ai_employees()$$), 'no error',
  'The defaults are a valid listing (popular, 20 a page)');
select tests.clear_authentication();

select results_eq(
  $$select public.marketplace_catalog_version(), (select count(*) from private.employee_analytics_deltas),
           (select count(*) from public.purchased_employees)$$,
  $$select version, deltas, hires from before_calls$$,
  'None of these calls wrote anything');

select * from finish();
rollback;
