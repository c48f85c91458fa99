-- The plan's max_hired_employees caps a user's active hires: the hire past it is hire_limit_reached (403, with the
-- count in details and what to do in hint) and writes nothing; a deactivated hire frees its slot, and reactivating it
-- (hire_employee or an update) needs a slot again; the same rule holds for a hire the service side inserts; a plan
-- without a cap has none. (That concurrent hires never exceed it is proved by scripts/test/marketplace_concurrency_test.ts.)
begin;
\ir ../../_helpers.psql
\ir ../../_fixtures/marketplace.psql
select plan(17);

select tests.create_marketplace_fixtures();
select tests.create_employee('pgtap-cap-' || n) from generate_series(1, 5) n;
select tests.create_hirer('pgtap-cap-olga') as olga \gset
select tests.create_hirer('pgtap-cap-pia', 'pgtap040_unlimited') as pia \gset
select tests.create_hirer('pgtap-cap-quin') as quin \gset

select ok((tests.hire_as(:'olga', 'pgtap-cap-1')).is_active, 'The first hire on a plan of two is active');
select ok((tests.hire_as(:'olga', 'pgtap-cap-2')).is_active, 'So is the second');

select tests.authenticate_as(:'olga');
select is(tests.api_error($$select public.hire_employee('pgtap-cap-3')$$),
  jsonb_build_object('code', 'hire_limit_reached', 'message', 'Your pgTAP Two plan allows 2 active AI employees',
                     'details', '2 of 2 active', 'hint', 'Deactivate a hired employee or upgrade your plan',
                     'status', 403),
  'The third is hire_limit_reached (403), with the count and what to do');
select is((select count(*)::int from public.purchased_employees), 2, 'The refused hire wrote nothing');
select is((tests.analytics_of('pgtap-cap-3')).hire_count, 0::bigint, 'Nor counted anything');

select is(tests.affected_rows($$update public.purchased_employees set is_active = false
                                 where employee_id = (select id from public.ai_employees where slug = 'pgtap-cap-1')$$),
  1, 'Deactivating a hire ...');
select ok((select is_active from public.hire_employee('pgtap-cap-3')), '... frees its slot for another');
select is(tests.api_error_code($$select public.hire_employee('pgtap-cap-1')$$), 'hire_limit_reached 403',
  'Rehiring the deactivated one needs a slot: hire_limit_reached');
select is(tests.api_error_code($$update public.purchased_employees set is_active = true
                                  where employee_id = (select id from public.ai_employees where slug = 'pgtap-cap-1')$$),
  'hire_limit_reached 403', 'Reactivating it by an update is refused the same way');
select is((select count(*)::int from public.purchased_employees where is_active), 2, 'Two active hires, still');
select is((select count(*)::int from public.purchased_employees), 3, 'And three hires in all (one inactive)');
select tests.clear_authentication();

-- ============================================================================ the rule is the table's
select is(
  tests.api_error_code(format($$insert into public.purchased_employees (user_id, employee_id)
                                select %L, id from public.ai_employees where slug = 'pgtap-cap-4'$$, :'olga')),
  'hire_limit_reached 403', 'A hire inserted by the service side past the cap is refused too');
select lives_ok(format($$insert into public.purchased_employees (user_id, employee_id, is_active)
                         select %L, id, false from public.ai_employees where slug = 'pgtap-cap-4'$$, :'olga'),
  'An inactive hire needs no slot');

-- ============================================================================ no cap, and one user's cap is theirs
select is((select count(*)::int from generate_series(1, 5) n where (tests.hire_as(:'pia', 'pgtap-cap-' || n)).is_active),
  5, 'A plan without max_hired_employees hires any number');
select ok((tests.hire_as(:'quin', 'pgtap-cap-5')).is_active,
  'Another user on the same plan has slots of their own');

-- ============================================================================ plans downgraded
update public.users set plan = 'pgtap040_two' where id = :'pia';
select is((select count(*)::int from public.purchased_employees where user_id = :'pia' and is_active), 5,
  'A downgrade deactivates nothing');
select is(tests.api_error_code(format($$select tests.hire_as(%L, 'pgtap-cap-1')$$, :'pia')), 'no error',
  'An already active hire is returned as it is, over the cap or not');

select * from finish();
rollback;
