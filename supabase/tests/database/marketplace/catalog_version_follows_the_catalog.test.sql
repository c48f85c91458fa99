-- The catalog version a cache keys on: bumped in the same transaction by every statement that changes the catalog
-- (an employee added, edited, retired or deleted; a category added or renamed), never by hires, ratings or the
-- analytics fold; anyone may read it.
begin;
\ir ../../_helpers.psql
\ir ../../_fixtures/marketplace.psql
select plan(10);

select tests.create_marketplace_fixtures();
select public.marketplace_catalog_version() as v0 \gset
select tests.create_employee('pgtap-cv-one') as one_id \gset
select ok(public.marketplace_catalog_version() > :'v0', 'Adding an employee bumps the catalog version');
select public.marketplace_catalog_version() as v1 \gset
update public.ai_employees set short_description = 'New words' where id = :'one_id';
select ok(public.marketplace_catalog_version() > :'v1', 'Editing one bumps it');
select public.marketplace_catalog_version() as v2 \gset
update public.ai_employees set status = 'retired' where id = :'one_id';
select ok(public.marketplace_catalog_version() > :'v2', 'Retiring one bumps it');
update public.ai_employees set status = 'available' where id = :'one_id';
select public.marketplace_catalog_version() as v3 \gset
update public.ai_employee_categories set name = 'Renamed' where slug = 'pgtap-beta';
select ok(public.marketplace_catalog_version() > :'v3', 'Renaming a category bumps it');
select public.marketplace_catalog_version() as v4 \gset

select tests.create_hirer('pgtap-cv-vic') as vic \gset
select tests.hire_as(:'vic', 'pgtap-cv-one') is not null as hired \gset
select tests.authenticate_as(:'vic');
insert into public.employee_ratings (user_id, employee_id, stars) values (:'vic', :'one_id', 5);
update public.purchased_employees set nickname = 'Vic''s', is_active = false;
select tests.clear_authentication();
select private.fold_employee_analytics() >= 0 as folded \gset
select is(public.marketplace_catalog_version(), :'v4'::bigint,
  'Hires, ratings, renaming a hire and the fold leave it (the numbers are not the catalog)');

select tests.create_employee('pgtap-cv-two') as two_id \gset
select public.marketplace_catalog_version() as v5 \gset
delete from public.ai_employees where id = :'two_id';
select ok(public.marketplace_catalog_version() > :'v5', 'Deleting an employee bumps it');

select public.marketplace_catalog_version() as v6 \gset
update public.ai_employees set name = name where slug like 'pgtap-cv-%';
select is(public.marketplace_catalog_version(), :'v6'::bigint + 1, 'One statement bumps it once, whatever it touches');

select tests.authenticate_as_anon();
select is(public.marketplace_catalog_version(), :'v6'::bigint + 1, 'anon reads it');
select is((public.list_ai_employees() ->> 'catalog_version')::bigint, :'v6'::bigint + 1,
  'The listing reports the same version');
select throws_ok($$select * from private.marketplace_catalog_version$$, '42501', null,
  'The counter itself is private');
select tests.clear_authentication();

select * from finish();
rollback;
