-- hire_employee refuses what cannot be hired with a clear error in the Data API's shape, and writes nothing: an
-- employee that does not exist (404 employee_not_found), is retired (409 employee_retired) or coming soon (409
-- employee_coming_soon), a string that is no slug (400 invalid_slug), a caller without a session (anon: no EXECUTE)
-- or without an account (401 not_authenticated). Reactivating a hire of an employee retired meanwhile is refused the
-- same way, by hire_employee and by an update. Hiring is idempotent.
begin;
\ir ../../_helpers.psql
\ir ../../_fixtures/marketplace.psql
select plan(20);

select tests.create_marketplace_fixtures();
select tests.create_employee('pgtap-ref-open') as open_id \gset
select tests.create_employee('pgtap-ref-soon', p_status => 'coming_soon', p_name => 'Soon') as soon_id \gset
select tests.create_employee('pgtap-ref-gone', p_status => 'retired', p_name => 'Gone') as gone_id \gset
select tests.create_employee('pgtap-ref-late') as late_id \gset
select tests.create_hirer('pgtap-ref-nia') as nia \gset

create temp table counts_before as
  select (select count(*) from public.purchased_employees) as hires,
         (select count(*) from private.employee_analytics_deltas) as deltas;

select tests.authenticate_as(:'nia');
select is(tests.api_error($$select public.hire_employee('pgtap-ref-nobody')$$),
  jsonb_build_object('code', 'employee_not_found', 'message', 'No AI employee is called pgtap-ref-nobody',
                     'details', null, 'hint', null, 'status', 404),
  'A missing employee is employee_not_found (404), in the Data API''s shape');
select is(tests.api_error_code($$select public.hire_employee('pgtap-ref-gone')$$), 'employee_retired 409',
  'A retired employee is employee_retired (409)');
select is(tests.api_error($$select public.hire_employee('pgtap-ref-gone')$$) ->> 'message',
  'Gone has been retired and can no longer be hired', 'The message names the employee');
select is(tests.api_error_code($$select public.hire_employee('pgtap-ref-soon')$$), 'employee_coming_soon 409',
  'A coming-soon employee is employee_coming_soon (409)');
select is(tests.api_error_code(format('select public.hire_employee(%L)', repeat('a', 10240))), 'invalid_slug 400',
  'A 10 KB slug is invalid_slug (400)');
select is(tests.api_error_code($$select public.hire_employee('Not a slug')$$), 'invalid_slug 400',
  'A string that is no slug is invalid_slug (400)');
select is(tests.api_error_code($$select public.hire_employee(null)$$), 'invalid_slug 400',
  'No slug is invalid_slug (400)');
select is((select count(*)::int from public.purchased_employees), 0, 'The user has no hire after the refusals');
select tests.clear_authentication();
select results_eq(
  $$select (select count(*) from public.purchased_employees), (select count(*) from private.employee_analytics_deltas)$$,
  $$select hires, deltas from counts_before$$,
  'The refused hires wrote nothing (no hire, no analytics delta)');

select tests.authenticate_as_anon();
select throws_ok($$select public.hire_employee('pgtap-ref-open')$$, '42501', null, 'anon cannot call hire_employee');
select tests.clear_authentication();

select set_config('request.jwt.claims', json_build_object('sub', gen_random_uuid(), 'role', 'authenticated')::text, true);
select set_config('role', 'authenticated', true);
select is(tests.api_error_code($$select public.hire_employee('pgtap-ref-open')$$), 'not_authenticated 401',
  'A token of a user without an account is not_authenticated (401)');
select tests.clear_authentication();

-- ============================================================================ idempotent
select (tests.hire_as(:'nia', 'pgtap-ref-open')).id as first_id \gset
select is((tests.hire_as(:'nia', 'pgtap-ref-open')).id::text, :'first_id', 'Hiring an employee twice returns the same hire');
select is((select count(*)::int from public.purchased_employees where user_id = :'nia'), 1, 'One hire row');
select is((tests.analytics_of('pgtap-ref-open')).hire_count, 1::bigint, 'Counted once');

-- ============================================================================ retired meanwhile
select tests.hire_as(:'nia', 'pgtap-ref-late') is not null as hired \gset
select tests.authenticate_as(:'nia');
update public.purchased_employees set is_active = false where employee_id = :'late_id';
select tests.clear_authentication();
update public.ai_employees set status = 'retired' where id = :'late_id';
select tests.authenticate_as(:'nia');
select is(tests.api_error_code($$select public.hire_employee('pgtap-ref-late')$$), 'employee_retired 409',
  'Rehiring an employee retired meanwhile is employee_retired (409)');
select is(tests.api_error_code(format($$update public.purchased_employees set is_active = true where employee_id = %L$$, :'late_id')),
  'employee_retired 409', 'Reactivating it by an update is refused the same way');
select is((select is_active from public.purchased_employees where employee_id = :'late_id'), false, 'It stays inactive');
select is((select name from public.ai_employees where id = :'late_id'), 'Pgtap Ref Late',
  'Its hirer still reads the retired employee');
select tests.clear_authentication();

-- A hire of an employee that was active when retired keeps working (nothing deactivates it).
update public.ai_employees set status = 'retired' where id = :'open_id';
select is((tests.hire_of(:'nia', 'pgtap-ref-open')).is_active, true, 'Retiring an employee leaves its active hires active');
select is((tests.hire_as(:'nia', 'pgtap-ref-open')).id::text, :'first_id',
  'hire_employee of it returns the active hire as it is');

select * from finish();
rollback;
