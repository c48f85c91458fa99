-- The system prompt never reaches a client role: no column that holds one (in any schema the API could expose, tables
-- and views alike) is readable by anon or authenticated, no function they may call returns a row type or a column
-- that holds one or even names it in its body, and trying every client RPC (listing, detail, reviews, hiring,
-- upgrading, reading one's hires) returns nothing that contains a prompt. The server reads it
-- (private.hired_employee_config, service role only).
begin;
\ir ../../_helpers.psql
\ir ../../_fixtures/marketplace.psql
select plan(16);

select tests.create_marketplace_fixtures();
select tests.create_employee('pgtap-secret-one', p_description => 'Keeps secrets') as one_id \gset
select tests.create_hirer('pgtap-secret-kim') as kim \gset

-- ============================================================================ guards over the catalog
select is(
  (select array_agg(format('%s.%s.%s by %s', c.table_schema, c.table_name, c.column_name, r) order by 1)
     from information_schema.columns c
    cross join unnest(array['anon', 'authenticated']) r
    where c.column_name ~ 'prompt' and c.table_schema not in ('pg_catalog', 'information_schema')
      and (has_column_privilege(r, format('%I.%I', c.table_schema, c.table_name), c.column_name, 'select')
           or has_column_privilege(r, format('%I.%I', c.table_schema, c.table_name), c.column_name, 'update'))),
  null, 'No table or view column holding a prompt is readable by anon or authenticated');
select ok(
  (select count(*) from information_schema.columns where column_name = 'system_prompt'
      and table_schema in ('public', 'private')) >= 2,
  'The guard above sees the prompt columns (ai_employees, ai_employee_versions)');

-- Functions a client role may call (but pgTAP's and these tests' own): what they return (a row type, OUT columns)
-- and what their body reads.
select is(
  (select array_agg(format('%s(%s) for %s', p.oid::regproc, pg_get_function_identity_arguments(p.oid), r) order by 1)
     from pg_proc p
    cross join unnest(array['anon', 'authenticated']) r
    where p.pronamespace::regnamespace::text not in ('pg_catalog', 'information_schema', 'extensions', 'tests')
      and has_function_privilege(r, p.oid, 'execute')
      and (exists (select 1 from pg_attribute a join pg_type t on t.typrelid = a.attrelid
                    where t.oid = p.prorettype and a.attname ~ 'prompt' and a.attnum > 0)
           or exists (select 1 from unnest(coalesce(p.proargnames, '{}')) n where n ~ 'prompt'))),
  null, 'No function anon or authenticated may call returns a prompt column');
select is(
  (select array_agg(format('%s(%s)', p.oid::regproc, pg_get_function_identity_arguments(p.oid)) order by 1)
     from pg_proc p
    where p.pronamespace = 'public'::regnamespace
      and (has_function_privilege('anon', p.oid, 'execute') or has_function_privilege('authenticated', p.oid, 'execute'))
      and p.prosrc ~ 'system_prompt'),
  null, 'No public function a client may call even reads system_prompt');
select ok(
  (select count(*) from pg_proc p where p.pronamespace = 'public'::regnamespace
      and has_function_privilege('anon', p.oid, 'execute')) >= 4,
  'The function guards see the client RPCs (list_ai_employees, get_ai_employee, list_employee_reviews, …)');

-- ============================================================================ trying, as anon
select tests.authenticate_as_anon();
select unalike(public.list_ai_employees('pgtap-alpha')::text, '%PGTAP-SECRET-PROMPT%',
  'anon: the listing holds no prompt');
select unalike(public.list_ai_employees(null, 'secrets')::text, '%PGTAP-SECRET-PROMPT%',
  'anon: a search holds no prompt');
select unalike(public.get_ai_employee('pgtap-secret-one')::text, '%PGTAP-SECRET-PROMPT%',
  'anon: the detail holds no prompt');
select unalike(public.list_employee_reviews('pgtap-secret-one')::text, '%PGTAP-SECRET-PROMPT%',
  'anon: the reviews hold no prompt');
select tests.clear_authentication();

-- ============================================================================ trying, as a hirer
select tests.authenticate_as(:'kim');
select unalike((select to_jsonb(h)::text from public.hire_employee('pgtap-secret-one') h), '%PGTAP-SECRET-PROMPT%',
  'A hirer: hire_employee returns no prompt');
select tests.clear_authentication();
update public.ai_employees set system_prompt = 'PGTAP-SECRET-PROMPT two' where id = :'one_id';
select tests.authenticate_as(:'kim');
select unalike(
  (select to_jsonb(u)::text from public.upgrade_hired_employee((select id from public.purchased_employees)) u),
  '%PGTAP-SECRET-PROMPT%', 'A hirer: upgrade_hired_employee returns no prompt');
select unalike((select jsonb_agg(to_jsonb(h))::text from public.purchased_employees h), '%PGTAP-SECRET-PROMPT%',
  'A hirer: their hires hold no prompt');
select unalike(public.get_ai_employee('pgtap-secret-one')::text, '%PGTAP-SECRET-PROMPT%',
  'A hirer: the detail of their employee holds no prompt, of any version');
select throws_ok(
  format($$select * from private.hired_employee_config(%L)$$, (select id from public.purchased_employees)),
  '42501', null, 'A hirer cannot call the server''s hired_employee_config');
select tests.clear_authentication();

-- ============================================================================ the server
select tests.authenticate_as_service_role();
select is((select system_prompt from private.hired_employee_config((select id from public.purchased_employees
                                                                     where user_id = :'kim'))),
  'PGTAP-SECRET-PROMPT two', 'The service reads the prompt a hire runs with (hired_employee_config)');
select tests.clear_authentication();
select is(
  (select array_agg(r order by r) from unnest(array['anon', 'authenticated']) r
    where has_function_privilege(r, 'private.hired_employee_config(uuid)', 'execute')),
  null, 'anon and authenticated hold no EXECUTE on hired_employee_config');

select * from finish();
rollback;
