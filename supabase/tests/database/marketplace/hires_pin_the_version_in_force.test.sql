-- The prompt a hire runs with is pinned by the database: hiring pins the version in force whatever the writer sends,
-- a new version of the employee leaves existing hires where they are, upgrade_hired_employee moves a hire to the
-- current version and says from which to which (and nothing when it already runs it), deactivating and
-- reactivating (through hire_employee or an update) keep the pin, and nobody moves a pin anywhere else.
begin;
\ir ../../_helpers.psql
\ir ../../_fixtures/marketplace.psql
select plan(24);

select tests.create_marketplace_fixtures();
select tests.create_employee('pgtap-pin-eve', p_prompt => 'Eve v1') as eve \gset
update public.ai_employees set system_prompt = 'Eve v2' where id = :'eve';
select tests.create_hirer('pgtap-pin-lia') as lia \gset
select tests.create_hirer('pgtap-pin-max') as max \gset

-- ============================================================================ pinned when hired
select (tests.hire_as(:'lia', 'pgtap-pin-eve')).id as lia_hire \gset
select is((tests.hire_of(:'lia', 'pgtap-pin-eve')).pinned_version, 2, 'A hire is pinned to the version in force (2)');
select is((select system_prompt from private.hired_employee_config(:'lia_hire')), 'Eve v2',
  'It runs with that version''s prompt');

insert into public.purchased_employees (user_id, employee_id, pinned_version) values (:'max', :'eve', 1);
select is((tests.hire_of(:'max', 'pgtap-pin-eve')).pinned_version, 2,
  'A writer''s pinned_version is ignored: the database pins the version in force');
delete from public.purchased_employees where user_id = :'max';

update public.ai_employees set system_prompt = 'Eve v3', change_note = 'Sharper' where id = :'eve';
select is((tests.hire_of(:'lia', 'pgtap-pin-eve')).pinned_version, 2, 'A new version leaves the hire at its pin');
select is((select (version, system_prompt)::text from private.hired_employee_config(:'lia_hire')), '(2,"Eve v2")',
  'It still runs with version 2''s prompt');
select (tests.hire_as(:'max', 'pgtap-pin-eve')).id as max_hire \gset
select is((tests.hire_of(:'max', 'pgtap-pin-eve')).pinned_version, 3, 'A hire made now is pinned to version 3');

-- ============================================================================ the client cannot move a pin
select tests.authenticate_as(:'lia');
select throws_ok(format($$update public.purchased_employees set pinned_version = 3 where id = %L$$, :'lia_hire'),
  '42501', null, 'A user cannot set their hire''s pinned version');
select throws_ok(format($$update public.purchased_employees set pinned_at = now() where id = %L$$, :'lia_hire'),
  '42501', null, 'A user cannot set pinned_at');
select tests.clear_authentication();
select throws_ok(format($$update public.purchased_employees set pinned_version = 1 where id = %L$$, :'lia_hire'),
  '22023', null, 'Even the service side moves a pin only to the current version');
select throws_ok(format($$update public.purchased_employees set employee_id = gen_random_uuid() where id = %L$$, :'lia_hire'),
  '22023', null, 'A hire keeps its employee');

-- ============================================================================ upgrade
select tests.authenticate_as(:'lia');
select results_eq(
  format($$select from_version, to_version, upgraded from public.upgrade_hired_employee(%L)$$, :'lia_hire'),
  $$values (2, 3, true)$$,
  'upgrade_hired_employee says it moved the hire from version 2 to 3');
select is((select pinned_version from public.purchased_employees where id = :'lia_hire'), 3, 'The hire is at version 3');
select results_eq(
  format($$select from_version, to_version, upgraded from public.upgrade_hired_employee(%L)$$, :'lia_hire'),
  $$values (3, 3, false)$$,
  'Upgrading a hire at the current version changes nothing and says so');
select is(tests.api_error_code(format($$select public.upgrade_hired_employee(%L)$$, :'max_hire')), 'hire_not_found 404',
  'Upgrading another user''s hire is hire_not_found (404)');
select is(tests.api_error_code(format($$select public.upgrade_hired_employee(%L)$$, gen_random_uuid())),
  'hire_not_found 404', 'Upgrading an unknown hire is hire_not_found (404)');
select tests.clear_authentication();
select is((select (version, system_prompt)::text from private.hired_employee_config(:'lia_hire')), '(3,"Eve v3")',
  'After the upgrade it runs with version 3''s prompt');
select is((tests.hire_of(:'max', 'pgtap-pin-eve')).pinned_version, 3, 'The other user''s hire is untouched');

-- ============================================================================ deactivation and reactivation keep it
update public.ai_employees set system_prompt = 'Eve v4' where id = :'eve';
select tests.authenticate_as(:'lia');
select is(tests.affected_rows(format($$update public.purchased_employees set is_active = false where id = %L$$, :'lia_hire')),
  1, 'The user deactivates their hire');
select tests.clear_authentication();
select is((tests.hire_as(:'lia', 'pgtap-pin-eve')).id::text, :'lia_hire',
  'Hiring it again reactivates the same hire');
select results_eq(
  format($$select is_active, pinned_version, deactivated_at is null from public.purchased_employees where id = %L$$, :'lia_hire'),
  $$values (true, 3, true)$$,
  'Reactivated, it keeps version 3 though version 4 is in force');
select tests.authenticate_as(:'lia');
select lives_ok(format($$update public.purchased_employees set is_active = false where id = %L$$, :'lia_hire'),
  'Deactivated again ...');
select lives_ok(format($$update public.purchased_employees set is_active = true where id = %L$$, :'lia_hire'),
  '... and reactivated by an update');
select is((select pinned_version from public.purchased_employees where id = :'lia_hire'), 3,
  'Reactivated by an update, it still keeps version 3');
select tests.clear_authentication();

select tests.authenticate_as_anon();
select throws_ok(format($$select public.upgrade_hired_employee(%L)$$, :'lia_hire'), '42501', null,
  'anon cannot call upgrade_hired_employee');
select tests.clear_authentication();

select * from finish();
rollback;
