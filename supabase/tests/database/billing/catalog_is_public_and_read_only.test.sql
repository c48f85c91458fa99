-- The catalog is public and read-only: a signed-in user and anon read exactly the active plans and token packs
-- (the seeded free, pro and max among them) and no inactive one — except the plan a user is still on — and neither
-- can insert, change or delete a plan or a pack.
begin;
\ir ../../_helpers.psql
select plan(17);

select tests.create_user('billing-rls-bob@example.com') as bob_id \gset

-- An inactive plan and pack: hidden from the API roles.
insert into public.subscription_plans
  (id, name, monthly_token_allowance, requests_per_minute, tokens_per_minute, max_output_tokens, is_active)
values ('pgtap021_legacy', 'Legacy', 1, 1, 1, 1, false);
insert into public.token_packs (id, name, tokens, price_cents, is_active)
values ('pgtap021_old_pack', 'Old pack', 1, 1, false);
-- Carol is still on a plan taken off sale.
select tests.create_user('billing-rls-carol@example.com') as carol_id \gset
insert into public.subscription_plans
  (id, name, monthly_token_allowance, requests_per_minute, tokens_per_minute, max_output_tokens, is_active)
values ('pgtap021_retired', 'Retired', 1, 1, 1, 1, false);
update public.users set plan = 'pgtap021_retired' where id = :'carol_id';
select array_agg(id order by id) as active_plans from public.subscription_plans where is_active \gset
select array_agg(id order by id) as active_packs from public.token_packs where is_active \gset

select tests.authenticate_as(:'bob_id');

-- ================================================================== the catalog, as authenticated
select is((select array_agg(id order by id) from public.subscription_plans), :'active_plans'::text[],
  'A signed-in user reads exactly the active plans');
select is((select array_agg(id order by id) from public.token_packs), :'active_packs'::text[],
  'A signed-in user reads exactly the active token packs');
select is((select count(*)::int from public.subscription_plans where id = 'pgtap021_legacy'), 0,
  'A signed-in user cannot read an inactive plan');

-- A user still on a plan taken off sale reads that plan, and no other inactive one.
select tests.clear_authentication();
select tests.authenticate_as(:'carol_id');
select is((select array_agg(id order by id) from public.subscription_plans where not is_active),
  array['pgtap021_retired'], 'A user on a plan taken off sale reads it, and no other inactive plan');
select tests.clear_authentication();
select tests.authenticate_as(:'bob_id');
select is((select count(*)::int from public.subscription_plans where id = 'pgtap021_retired'), 0,
  'Another user does not read that inactive plan');

select throws_ok(
  $$insert into public.subscription_plans (id, name, monthly_token_allowance, requests_per_minute, tokens_per_minute,
                                           max_output_tokens) values ('pgtap021_mine', 'Mine', 1e9, 1, 1, 1)$$,
  '42501', null, 'A signed-in user cannot insert a plan');
select throws_ok($$update public.subscription_plans set monthly_token_allowance = 1000000000 where id = 'free'$$,
  '42501', null, 'A signed-in user cannot change a plan');
select throws_ok($$delete from public.subscription_plans where id = 'max'$$,
  '42501', null, 'A signed-in user cannot delete a plan');
select throws_ok(
  $$insert into public.token_packs (id, name, tokens, price_cents) values ('pgtap021_cheap', 'Cheap', 1000000000, 1)$$,
  '42501', null, 'A signed-in user cannot insert a token pack');
select throws_ok($$update public.token_packs set price_cents = 1 where id = 'pack_20m'$$,
  '42501', null, 'A signed-in user cannot change a token pack');
select throws_ok($$delete from public.token_packs where id = 'pack_1m'$$,
  '42501', null, 'A signed-in user cannot delete a token pack');

-- =================================================================================== anon
select tests.clear_authentication();
select tests.authenticate_as_anon();
select is((select array_agg(id order by id) from public.subscription_plans), :'active_plans'::text[],
  'anon reads exactly the active plans');
select is((select array_agg(id order by id) from public.token_packs), :'active_packs'::text[],
  'anon reads exactly the active token packs');
select is((select count(*)::int from public.subscription_plans where not is_active), 0,
  'anon reads no inactive plan');
select is((select count(*)::int from public.token_packs where id = 'pgtap021_old_pack'), 0,
  'anon cannot read an inactive token pack');
select ok((select count(*) from public.subscription_plans) >= 3, 'anon reads the seeded plans (free, pro, max)');

select throws_ok($$update public.token_packs set price_cents = 1 where id = 'pack_20m'$$,
  '42501', null, 'anon cannot change a token pack');
select tests.clear_authentication();

select * from finish();
rollback;
