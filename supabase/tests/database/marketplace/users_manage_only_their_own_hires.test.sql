-- Hires under RLS, as supabase-js reaches them: a signed-in user reads only their own hires, renames them, edits their
-- instructions and deactivates them (deactivated_at stamped), within bounds; touches nothing of another user's;
-- inserts and deletes none (hire_employee makes a hire), and sets no other column. anon reads nothing.
begin;
\ir ../../_helpers.psql
\ir ../../_fixtures/marketplace.psql
select plan(19);

select tests.create_marketplace_fixtures();
select tests.create_employee('pgtap-own-one') as one_id \gset
select tests.create_hirer('pgtap-own-rae') as rae \gset
select tests.create_hirer('pgtap-own-sol') as sol \gset
select (tests.hire_as(:'rae', 'pgtap-own-one')).id as rae_hire \gset
select (tests.hire_as(:'sol', 'pgtap-own-one')).id as sol_hire \gset

select tests.authenticate_as(:'rae');
select results_eq($$select id from public.purchased_employees$$, array[:'rae_hire']::uuid[],
  'A user reads exactly their own hire');
select is(tests.affected_rows(format($$update public.purchased_employees set nickname = 'Rae''s SDR' where id = %L$$, :'rae_hire')),
  1, 'They rename it');
select is(tests.affected_rows(format($$update public.purchased_employees set custom_instructions = 'Write in British English.' where id = %L$$, :'rae_hire')),
  1, 'They edit its instructions');
select results_eq(format($$select nickname, custom_instructions from public.purchased_employees where id = %L$$, :'rae_hire'),
  $$values ('Rae''s SDR', 'Write in British English.')$$, 'They read back the name and instructions');
select throws_ok(format($$update public.purchased_employees set custom_instructions = repeat('x', 4001) where id = %L$$, :'rae_hire'),
  '23514', null, 'Instructions are at most 4000 characters');
select throws_ok(format($$update public.purchased_employees set nickname = repeat('x', 101) where id = %L$$, :'rae_hire'),
  '23514', null, 'A name is at most 100 characters');
select is(tests.affected_rows(format($$update public.purchased_employees set is_active = false where id = %L$$, :'rae_hire')),
  1, 'They deactivate it');
select results_eq(format($$select is_active, deactivated_at is not null from public.purchased_employees where id = %L$$, :'rae_hire'),
  $$values (false, true)$$, 'It is inactive, with deactivated_at stamped');

select is(tests.affected_rows(format($$update public.purchased_employees set nickname = 'Mine now' where id = %L$$, :'sol_hire')),
  0, 'Their update of another user''s hire touches nothing');
select is(tests.affected_rows(format($$update public.purchased_employees set is_active = false where id = %L$$, :'sol_hire')),
  0, 'Nor can they deactivate it');
select throws_ok(format($$update public.purchased_employees set user_id = %L where id = %L$$, :'sol', :'rae_hire'),
  '42501', null, 'They cannot give their hire to another user');
select throws_ok(format($$update public.purchased_employees set last_used_at = now() where id = %L$$, :'rae_hire'),
  '42501', null, 'They cannot set last_used_at (the service does)');
select throws_ok(format($$update public.purchased_employees set hired_at = now() where id = %L$$, :'rae_hire'),
  '42501', null, 'They cannot set hired_at');
select throws_ok(format($$insert into public.purchased_employees (user_id, employee_id) values (%L, %L)$$, :'rae', :'one_id'),
  '42501', null, 'They cannot insert a hire (hire_employee does)');
select throws_ok(format($$delete from public.purchased_employees where id = %L$$, :'rae_hire'),
  '42501', null, 'They cannot delete a hire');
select tests.clear_authentication();
select results_eq(format($$select nickname, is_active from public.purchased_employees where id = %L$$, :'sol_hire'),
  $$values (null::text, true)$$, 'The other user''s hire is unchanged');

select tests.authenticate_as_anon();
select throws_ok($$select * from public.purchased_employees$$, '42501', null, 'anon cannot read hires');
select throws_ok($$update public.purchased_employees set nickname = 'x'$$, '42501', null, 'anon cannot change hires');
select tests.clear_authentication();

select tests.authenticate_as(:'rae');
select lives_ok($$select h.id, e.slug, e.name from public.purchased_employees h
                    join public.ai_employees e on e.id = h.employee_id$$,
  'A user lists their hires with their employees'' public columns');
select tests.clear_authentication();

select * from finish();
rollback;
