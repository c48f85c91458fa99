-- Ratings: only a user who hired an employee rates it (not_hired, 403, for anyone else, and the foreign key to the
-- hire holds it), 1-5 stars and a review of at most 2000 characters, once per user and employee; the version rated
-- is the author's pinned version, recorded by the database (again on each edit); the author alone reads, edits and
-- deletes it; anon reads nothing of the table.
begin;
\ir ../../_helpers.psql
\ir ../../_fixtures/marketplace.psql
select plan(22);

select tests.create_marketplace_fixtures();
select tests.create_employee('pgtap-rate-ivy') as ivy \gset
select tests.create_employee('pgtap-rate-jon') as jon \gset
select tests.create_hirer('pgtap-rate-tess') as tess \gset
select tests.create_hirer('pgtap-rate-uma') as uma \gset
update public.ai_employees set system_prompt = 'Ivy v2' where id = :'ivy';
select tests.hire_as(:'tess', 'pgtap-rate-ivy') is not null as hired \gset
select tests.hire_as(:'uma', 'pgtap-rate-ivy') is not null as hired2 \gset

select tests.authenticate_as(:'tess');
select is(tests.api_error(format($$insert into public.employee_ratings (user_id, employee_id, stars) values (%L, %L, 5)$$, :'tess', :'jon')),
  jsonb_build_object('code', 'not_hired', 'message', 'Only users who have hired this AI employee can rate it',
                     'details', null, 'hint', 'Hire it first (hire_employee)', 'status', 403),
  'Rating an employee one never hired is not_hired (403)');
select lives_ok(format($$insert into public.employee_ratings (user_id, employee_id, stars, review)
                         values (%L, %L, 4, 'Books real meetings.')$$, :'tess', :'ivy'),
  'A hirer rates it');
select results_eq(format($$select stars, review, employee_version from public.employee_ratings where employee_id = %L$$, :'ivy'),
  $$values (4::smallint, 'Books real meetings.', 2)$$,
  'The rating records the version the author runs (2)');
select throws_ok(format($$insert into public.employee_ratings (user_id, employee_id, stars, employee_version)
                          values (%L, %L, 4, 1)$$, :'tess', :'jon'),
  '42501', null, 'The author cannot choose the version rated');
select throws_ok(format($$insert into public.employee_ratings (user_id, employee_id, stars) values (%L, %L, 3)$$, :'tess', :'ivy'),
  '23505', null, 'A second rating of the same employee is refused (one per user and employee)');
select throws_ok(format($$insert into public.employee_ratings (user_id, employee_id, stars) values (%L, %L, 3)$$, :'uma', :'ivy'),
  '42501', null, 'A user cannot rate in another user''s name');
select tests.clear_authentication();

select tests.authenticate_as(:'uma');
select throws_ok(format($$insert into public.employee_ratings (user_id, employee_id, stars) values (%L, %L, 6)$$, :'uma', :'ivy'),
  '23514', null, 'Six stars is refused');
select throws_ok(format($$insert into public.employee_ratings (user_id, employee_id, stars) values (%L, %L, 0)$$, :'uma', :'ivy'),
  '23514', null, 'Zero stars is refused');
select throws_ok(format($$insert into public.employee_ratings (user_id, employee_id, stars, review) values (%L, %L, 3, %L)$$,
                        :'uma', :'ivy', repeat('x', 2001)),
  '23514', null, 'A review over 2000 characters is refused');
select throws_ok(format($$insert into public.employee_ratings (user_id, employee_id, stars, review) values (%L, %L, 3, '   ')$$,
                        :'uma', :'ivy'),
  '23514', null, 'A blank review is refused (leave it out instead)');
select lives_ok(format($$insert into public.employee_ratings (user_id, employee_id, stars) values (%L, %L, 2)$$, :'uma', :'ivy'),
  'A rating without a review is fine');
select is((select count(*)::int from public.employee_ratings), 1, 'A user reads only their own rating');
select is(tests.affected_rows(format($$update public.employee_ratings set stars = 1 where user_id = %L$$, :'tess')), 0,
  'Their update of another user''s rating touches nothing');
select is(tests.affected_rows(format($$delete from public.employee_ratings where user_id = %L$$, :'tess')), 0,
  'Nor can they delete it');
select tests.clear_authentication();

-- ============================================================================ editing re-records the version
update public.ai_employees set system_prompt = 'Ivy v3' where id = :'ivy';
select tests.authenticate_as(:'tess');
select lives_ok(format($$select public.upgrade_hired_employee(id) from public.purchased_employees where employee_id = %L$$, :'ivy'),
  'The author upgrades to version 3 ...');
select is(tests.affected_rows(format($$update public.employee_ratings set stars = 5, review = 'Even better now.' where employee_id = %L$$, :'ivy')),
  1, '... and edits their rating');
select results_eq(format($$select stars, employee_version from public.employee_ratings where employee_id = %L$$, :'ivy'),
  $$values (5::smallint, 3)$$, 'The edited rating rates version 3');
select throws_ok(format($$update public.employee_ratings set employee_id = %L$$, :'jon'), '42501', null,
  'A rating keeps its employee');
select tests.clear_authentication();

-- A user who deactivated their hire has still hired it.
select tests.authenticate_as(:'uma');
update public.purchased_employees set is_active = false;
select is(tests.affected_rows(format($$update public.employee_ratings set review = 'Stopped using it.' where employee_id = %L$$, :'ivy')),
  1, 'A former hirer still edits their rating');
select is(tests.affected_rows(format($$delete from public.employee_ratings where employee_id = %L$$, :'ivy')), 1,
  'The author deletes their rating');
select tests.clear_authentication();

select tests.authenticate_as_anon();
select throws_ok($$select * from public.employee_ratings$$, '42501', null, 'anon cannot read the ratings table');
select throws_ok(format($$insert into public.employee_ratings (user_id, employee_id, stars) values (%L, %L, 5)$$, :'uma', :'ivy'),
  '42501', null, 'anon cannot rate');
select tests.clear_authentication();

select * from finish();
rollback;
