-- AI employee versions are immutable history made by the database: an employee starts at version 1, a change of its
-- system prompt, tools, provider, model or generation settings makes version N+1 (with the change note of that
-- update, else none) and nothing else does; nobody sets current_version, a note alone, or inserts, updates, deletes
-- or truncates a version, not even postgres; deleting an employee (never hired) takes its history with it.
begin;
\ir ../../_helpers.psql
\ir ../../_fixtures/marketplace.psql
select plan(27);

select tests.create_marketplace_fixtures();
select tests.create_employee('pgtap-ver-ada', p_prompt => 'Prompt one') as ada \gset

-- ============================================================================ versions by trigger
select is((select current_version from public.ai_employees where id = :'ada'), 1, 'A new employee is version 1');
select results_eq(
  format($$select version, system_prompt, model, change_note from public.ai_employee_versions where employee_id = %L$$, :'ada'),
  $$values (1, 'Prompt one', 'pgtap040-model', null::text)$$,
  'Version 1 records its prompt and model');

update public.ai_employees set system_prompt = 'Prompt two', change_note = 'Clearer' where id = :'ada';
select is((select current_version from public.ai_employees where id = :'ada'), 2, 'A new prompt makes version 2');
select results_eq(
  format($$select version, system_prompt, change_note from public.ai_employee_versions where employee_id = %L order by version$$, :'ada'),
  $$values (1, 'Prompt one', null::text), (2, 'Prompt two', 'Clearer')$$,
  'Version 2 holds the new prompt and the update''s note; version 1 is unchanged');

update public.ai_employees set tools = array['crm.search'] where id = :'ada';
select is((select (current_version, change_note)::text from public.ai_employees where id = :'ada'), '(3,)',
  'New tools make version 3, and without a new note the note is cleared');
update public.ai_employees set provider = 'anthropic', model = 'pgtap040-other', change_note = 'Other model' where id = :'ada';
select is((select current_version from public.ai_employees where id = :'ada'), 4, 'A new model makes version 4');
update public.ai_employees set generation_settings = '{"temperature": 0.1}' where id = :'ada';
select is((select current_version from public.ai_employees where id = :'ada'), 5, 'New settings make version 5');
update public.ai_employees set name = 'Ada L.', short_description = 'Renamed', status = 'coming_soon' where id = :'ada';
select is((select current_version from public.ai_employees where id = :'ada'), 5,
  'A name, description or status change makes no version');
update public.ai_employees set system_prompt = 'Prompt six' where id = :'ada';
update public.ai_employees set system_prompt = 'Prompt six' where id = :'ada';
select is((select current_version from public.ai_employees where id = :'ada'), 6,
  'Setting the prompt to what it already is makes no version (the second update)');
select results_eq(
  format($$select array_agg(version order by version) from public.ai_employee_versions where employee_id = %L$$, :'ada'),
  $$values (array[1, 2, 3, 4, 5, 6])$$,
  'Six versions, numbered without gaps');
select is(
  (select (v.tools, v.provider, v.model, v.generation_settings)::text from public.ai_employee_versions v
    where v.employee_id = :'ada' and v.version = 6),
  (select (e.tools, e.provider, e.model, e.generation_settings)::text from public.ai_employees e where e.id = :'ada'),
  'The latest version is the employee''s current state');

insert into public.ai_employees (slug, name, role, category, department, level, short_description, provider, model,
                                 system_prompt, current_version)
values ('pgtap-ver-bo', 'Bo', 'r', 'pgtap-alpha', 'd', 'mid', 's', 'openai', 'pgtap040-model', 'p', 9)
returning id as bo \gset
select is(
  (select current_version from public.ai_employees e where e.id = :'bo'), 1,
  'An insert starts at version 1 whatever the writer says');
select throws_ok(format($$update public.ai_employees set current_version = 7 where id = %L$$, :'bo'), '22023', null,
  'current_version cannot be set by a writer');
select throws_ok(format($$update public.ai_employees set change_note = 'Note alone' where id = %L$$, :'bo'), '22023',
  null, 'A change note alone cannot be set (it belongs to a version)');

-- ============================================================================ immutable
select throws_ok(
  format($$insert into public.ai_employee_versions (employee_id, version, system_prompt, tools, provider, model,
                                                      generation_settings) values (%L, 2, 'Forged', '{}', 'openai',
                                                      'pgtap040-model', '{}')$$, :'bo'),
  'PB405', null, 'Even postgres cannot insert a version (only the trigger records one)');
select throws_ok(format($$update public.ai_employee_versions set system_prompt = 'Rewritten' where employee_id = %L$$, :'ada'),
  'PB405', null, 'Even postgres cannot update a version');
select throws_ok(format($$delete from public.ai_employee_versions where employee_id = %L and version = 1$$, :'ada'),
  'PB405', null, 'Even postgres cannot delete a version of an employee that exists');
select throws_ok($$truncate public.ai_employee_versions cascade$$, 'PB405', null, 'Even postgres cannot truncate versions');
select is((select count(*)::int from public.ai_employee_versions where employee_id = :'ada'), 6,
  'The history is untouched');

select tests.authenticate_as_service_role();
select throws_ok(format($$update public.ai_employee_versions set change_note = 'x' where employee_id = %L$$, :'ada'),
  '42501', null, 'The service role cannot update a version');
select throws_ok(format($$delete from public.ai_employee_versions where employee_id = %L$$, :'ada'),
  '42501', null, 'The service role cannot delete a version');
select throws_ok(
  format($$insert into public.ai_employee_versions (employee_id, version, system_prompt, tools, provider, model,
                                                      generation_settings) values (%L, 2, 'x', '{}', 'openai', 'm', '{}')$$, :'bo'),
  '42501', null, 'The service role cannot insert a version');
select lives_ok(format($$update public.ai_employees set system_prompt = 'Service prompt' where id = %L$$, :'bo'),
  'The service role changes a prompt ...');
select is((select current_version from public.ai_employees where id = :'bo'), 2, '... and that makes version 2');
select tests.clear_authentication();

-- ============================================================================ deleting an employee
select lives_ok(format($$delete from public.ai_employees where id = %L$$, :'bo'),
  'An employee nobody hired can be deleted');
select is((select count(*)::int from public.ai_employee_versions where employee_id = :'bo'), 0,
  'Its history goes with it (the cascade is the one delete allowed)');
select tests.create_hirer('pgtap-ver-cy') as cy \gset
update public.ai_employees set status = 'available' where id = :'ada';
select tests.hire_as(:'cy', 'pgtap-ver-ada') is not null as hired \gset
select throws_ok(format($$delete from public.ai_employees where id = %L$$, :'ada'), '23503', null,
  'An employee someone hired cannot be deleted (retire it instead)');

select * from finish();
rollback;
