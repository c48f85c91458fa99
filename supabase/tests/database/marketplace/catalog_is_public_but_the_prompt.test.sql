-- The catalog as each role sees it: anon and signed-in users read the listed AI employees (available, coming soon)
-- and their versions and the categories, a user also the retired employee they hired; every column but the system
-- prompt, which no client role may read from either table (column grants), by name or with *. Nobody but the
-- service role writes the catalog, and nobody writes the history.
begin;
\ir ../../_helpers.psql
\ir ../../_fixtures/marketplace.psql
select plan(41);

select tests.create_marketplace_fixtures();
select tests.create_employee('pgtap-cat-open') as open_id \gset
select tests.create_employee('pgtap-cat-soon', p_status => 'coming_soon') as soon_id \gset
select tests.create_employee('pgtap-cat-gone') as gone_id \gset
select tests.create_hirer('pgtap-cat-hana') as hana \gset
select tests.create_hirer('pgtap-cat-ivo') as ivo \gset
select tests.hire_as(:'hana', 'pgtap-cat-gone') is not null as hired \gset
update public.ai_employees set status = 'retired' where slug = 'pgtap-cat-gone';

-- ============================================================================ the tables
select has_table('public', 'ai_employees', 'public.ai_employees exists');
select has_table('public', 'ai_employee_versions', 'public.ai_employee_versions exists');
select has_table('public', 'ai_employee_categories', 'public.ai_employee_categories exists');
select col_is_unique('public', 'ai_employees', 'slug', 'An AI employee''s slug is unique');
select fk_ok('public', 'ai_employees', 'category', 'public', 'ai_employee_categories', 'slug',
  'An AI employee''s category is a category');
select is((select indexdef ~ 'USING gin \(search_vector\)' from pg_indexes where indexname = 'ai_employees_search_idx'),
  true, 'The search vector has a GIN index');

-- ============================================================================ anon
select tests.authenticate_as_anon();
select results_eq(
  $$select slug from public.ai_employees where slug like 'pgtap-cat-%' order by slug$$,
  array['pgtap-cat-open', 'pgtap-cat-soon'],
  'anon reads the available and coming-soon employees, not the retired one');
select is((select count(*)::int from public.ai_employee_versions where employee_id = :'gone_id'), 0,
  'anon reads no version of the retired employee');
select is((select count(*)::int from public.ai_employee_versions where employee_id = :'open_id'), 1,
  'anon reads the versions of a listed employee');
select ok((select count(*) from public.ai_employee_categories where slug like 'pgtap-%') = 2,
  'anon reads the categories');
select throws_ok($$select system_prompt from public.ai_employees$$, '42501', null,
  'anon cannot read the system prompt of ai_employees');
select throws_ok($$select * from public.ai_employees$$, '42501', null,
  'anon cannot read ai_employees with * (it includes the prompt)');
select throws_ok($$select system_prompt from public.ai_employee_versions$$, '42501', null,
  'anon cannot read the system prompt of ai_employee_versions');
select throws_ok($$select * from public.ai_employee_versions$$, '42501', null,
  'anon cannot read ai_employee_versions with *');
select throws_ok($$update public.ai_employees set name = 'x'$$, '42501', null, 'anon cannot change an employee');
select throws_ok(
  $$insert into public.ai_employee_categories (slug, name) values ('pgtap-anon', 'Anon')$$, '42501', null,
  'anon cannot add a category');
select tests.clear_authentication();

-- ============================================================================ a signed-in user
select tests.authenticate_as(:'ivo');
select results_eq(
  $$select slug from public.ai_employees where slug like 'pgtap-cat-%' order by slug$$,
  array['pgtap-cat-open', 'pgtap-cat-soon'],
  'A user who hired nothing reads the listed employees only');
select ok((select count(*) from public.ai_employee_categories where slug like 'pgtap-%') = 2,
  'A signed-in user reads the categories');
select throws_ok($$select system_prompt from public.ai_employees$$, '42501', null,
  'A signed-in user cannot read the system prompt of ai_employees');
select throws_ok($$select * from public.ai_employee_versions$$, '42501', null,
  'A signed-in user cannot read ai_employee_versions with *');
select throws_ok(format($$delete from public.ai_employees where id = %L$$, :'open_id'), '42501', null,
  'A signed-in user cannot delete an employee');
select throws_ok(
  $$insert into public.ai_employees (slug, name, role, category, department, level, short_description, provider,
                                     model, system_prompt)
    values ('pgtap-mine', 'Mine', 'r', 'pgtap-alpha', 'd', 'mid', 's', 'openai', 'pgtap040-model', 'p')$$,
  '42501', null, 'A signed-in user cannot add an employee');
select throws_ok(format($$update public.ai_employee_versions set change_note = 'x' where employee_id = %L$$, :'open_id'),
  '42501', null, 'A signed-in user cannot change a version');
select tests.clear_authentication();

select tests.authenticate_as(:'hana');
select results_eq(
  $$select slug from public.ai_employees where slug like 'pgtap-cat-%' order by slug$$,
  array['pgtap-cat-gone', 'pgtap-cat-open', 'pgtap-cat-soon'],
  'A user reads the retired employee they hired, with the listed ones');
select is((select count(*)::int from public.ai_employee_versions where employee_id = :'gone_id'), 1,
  'A user reads the versions of the retired employee they hired');
select is((select name from public.ai_employees where id = :'gone_id'), 'Pgtap Cat Gone',
  'The hirer reads every public column of it');
select throws_ok(format($$select system_prompt from public.ai_employees where id = %L$$, :'gone_id'), '42501', null,
  'The hirer cannot read its system prompt either');
select tests.clear_authentication();

-- ============================================================================ column privileges
select is(
  (select array_agg(format('%s %s.%s', r, t, c) order by r, t, c)
     from unnest(array['anon', 'authenticated']) r,
          unnest(array['public.ai_employees', 'public.ai_employee_versions']) t,
          unnest(array['system_prompt']) c
    where has_column_privilege(r, t, c, 'select') or has_column_privilege(r, t, c, 'update')
       or has_column_privilege(r, t, c, 'insert')),
  null, 'Neither anon nor authenticated holds any privilege on a system_prompt column');
select ok(has_column_privilege('anon', 'public.ai_employees', 'short_description', 'select')
          and has_column_privilege('anon', 'public.ai_employees', 'tools', 'select')
          and has_column_privilege('anon', 'public.ai_employees', 'generation_settings', 'select')
          and has_column_privilege('anon', 'public.ai_employee_versions', 'change_note', 'select'),
  'The rest of the row is public (anon reads the description, tools, settings, change notes)');
select is(
  (select array_agg(format('%s %s %s', r, t, p) order by r, t, p)
     from unnest(array['anon', 'authenticated']) r,
          unnest(array['public.ai_employees', 'public.ai_employee_versions', 'public.ai_employee_categories']) t,
          unnest(array['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) p
    where has_table_privilege(r, t, p) or (p = 'UPDATE' and has_any_column_privilege(r, t, 'UPDATE'))
       or (p = 'INSERT' and has_any_column_privilege(r, t, 'INSERT'))),
  null, 'anon and authenticated can write nothing of the catalog');
select is(
  (select array_agg(p order by p) from unnest(array['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) p
    where has_table_privilege('service_role', 'public.ai_employee_versions', p)),
  null, 'Not even the service role writes ai_employee_versions (the trigger does)');

-- ============================================================================ the service role (operators)
select tests.authenticate_as_service_role();
select lives_ok(
  $$insert into public.ai_employees (slug, name, role, category, department, level, status, short_description,
                                     provider, model, system_prompt)
    values ('pgtap-cat-ops', 'Ops', 'Operator-made', 'pgtap-beta', 'Ops', 'senior', 'available', 'Made by an operator',
            'openai', 'pgtap040-model', 'PGTAP-SECRET-PROMPT ops')$$,
  'The service role adds an employee');
select is((select system_prompt from public.ai_employees where slug = 'pgtap-cat-ops'), 'PGTAP-SECRET-PROMPT ops',
  'The service role reads the system prompt');
select is(tests.affected_rows($$update public.ai_employees set short_description = 'Edited' where slug = 'pgtap-cat-ops'$$),
  1, 'The service role edits an employee');
select lives_ok($$insert into public.ai_employee_categories (slug, name) values ('pgtap-ops', 'Ops')$$,
  'The service role adds a category');
select tests.clear_authentication();

-- ============================================================================ constraints
select throws_ok($$select tests.create_employee('Not A Slug')$$, '23514', null, 'A slug is kebab-case');
select throws_ok($$select tests.create_employee('pgtap-cat-open')$$, '23505', null, 'A slug is taken once');
select throws_ok($$select tests.create_employee('pgtap-cat-lost', 'pgtap-nowhere')$$, '23503', null,
  'An employee''s category must exist');
select throws_ok($$select tests.create_employee('pgtap-cat-odd', p_status => 'paused')$$, '23514', null,
  'The status is available, coming_soon or retired');
select throws_ok($$update public.ai_employees set tools = array['Send Email!'] where slug = 'pgtap-cat-open'$$,
  '23514', null, 'Tool names are snake_case (dots for namespaces)');
select is((select is_listed from public.ai_employees where id = :'gone_id'), false,
  'A retired employee is not listed (is_listed follows the status)');

select * from finish();
rollback;
