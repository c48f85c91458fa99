-- Employee analytics are exact: after a random mix of hires, deactivations, rehires, ratings (new, changed, deleted),
-- deleted users, new versions and folds at random moments, an employee's numbers read live (its employee_analytics
-- row plus the deltas not yet folded) equal private.recompute_employee_analytics() from the source rows, and so does
-- the table itself once folded; a fold changes no live number. Each change is one delta row (no shared row is
-- updated by a hire). Active users follow last_used_at at the fold. The table is the service's: clients read the
-- numbers through the listing. (The same under real concurrency: scripts/test/marketplace_concurrency_test.ts.)
begin;
\ir ../../_helpers.psql
\ir ../../_fixtures/marketplace.psql
select plan(23);

select tests.create_marketplace_fixtures();
select tests.create_employee('pgtap-ana-' || n) from generate_series(1, 4) n;
select tests.create_hirer('pgtap-ana-u' || n, case when n % 3 = 0 then 'pgtap040_unlimited' else 'pgtap040_two' end)
  from generate_series(1, 8) n;
-- Everything before this test: folded, so only this test's deltas remain.
select private.fold_employee_analytics() >= 0 as folded \gset

-- ============================================================================ one hire, one delta, no shared row
select tests.create_hirer('pgtap-ana-first') as first_user \gset
create temp table deltas_before as select count(*) as n from private.employee_analytics_deltas;
select tests.hire_as(:'first_user', 'pgtap-ana-1') is not null as hired \gset
select is((select count(*) from private.employee_analytics_deltas) - (select n from deltas_before), 1::bigint,
  'A hire writes one delta row');
select results_eq(
  $$select hires, active_hires, last_hired_at is not null from private.employee_analytics_deltas order by id desc limit 1$$,
  $$values (1, 1, true)$$, 'It counts one hire, one active hire and its time');
select is((select hire_count from public.employee_analytics a join public.ai_employees e on e.id = a.employee_id
            where e.slug = 'pgtap-ana-1'), 0::bigint,
  'The employee_analytics row is not updated by the hire ...');
select is((tests.analytics_of('pgtap-ana-1')).hire_count, 1::bigint, '... but the live numbers count it at once');

-- ============================================================================ a random mix
-- Acts as each user the way a client does (hire_employee, updates under RLS); refusals (the cap, retired
-- employees, ratings by non-hirers) are part of the mix and change nothing.
create function tests.random_mix(p_steps integer) returns integer
language plpgsql
as $$
declare
  v_users uuid[] := (select array_agg(id order by email) from auth.users where email like 'pgtap-ana-u%');
  v_slugs text[] := array['pgtap-ana-1', 'pgtap-ana-2', 'pgtap-ana-3', 'pgtap-ana-4'];
  v_user uuid;
  v_slug text;
  v_op float8;
  v_done integer := 0;
begin
  for i in 1 .. p_steps loop
    v_user := v_users[1 + floor(random() * cardinality(v_users))::int];
    v_slug := v_slugs[1 + floor(random() * cardinality(v_slugs))::int];
    v_op := random();
    begin
      if v_op < 0.30 then
        perform tests.hire_as(v_user, v_slug);
      elsif v_op < 0.42 then
        perform tests.authenticate_as(v_user);
        update public.purchased_employees h set is_active = false
         where h.employee_id = (select id from public.ai_employees where slug = v_slug);
      elsif v_op < 0.50 then
        perform tests.authenticate_as(v_user);
        update public.purchased_employees h set is_active = true
         where h.employee_id = (select id from public.ai_employees where slug = v_slug);
      elsif v_op < 0.70 then
        perform tests.authenticate_as(v_user);
        insert into public.employee_ratings (user_id, employee_id, stars, review)
        select v_user, e.id, 1 + floor(random() * 5)::int, 'Review ' || i from public.ai_employees e where e.slug = v_slug
        on conflict (user_id, employee_id) do update set stars = excluded.stars, review = excluded.review;
      elsif v_op < 0.76 then
        perform tests.authenticate_as(v_user);
        delete from public.employee_ratings r where r.employee_id = (select id from public.ai_employees where slug = v_slug);
      elsif v_op < 0.80 then
        perform tests.authenticate_as(v_user);
        perform public.upgrade_hired_employee(h.id) from public.purchased_employees h;
      elsif v_op < 0.85 then
        update public.ai_employees set system_prompt = 'PGTAP-SECRET-PROMPT step ' || i where slug = v_slug;
      elsif v_op < 0.88 then
        update public.ai_employees set status = case status when 'available' then 'retired' else 'available' end
         where slug = v_slug;
      elsif v_op < 0.91 then
        -- A user deletes their account: their hires and ratings go by cascade.
        delete from auth.users where id = v_user;
        v_user := tests.create_hirer('pgtap-ana-u' || i || '-again');
        v_users := array_replace(v_users, (select u from unnest(v_users) u where u not in (select id from auth.users) limit 1), v_user);
      else
        perform private.fold_employee_analytics();
      end if;
      v_done := v_done + 1;
    exception when others then
      -- a refusal (hire_limit_reached, employee_retired, not_hired, …): rolled back, nothing changed
      null;
    end;
    perform tests.clear_authentication();
  end loop;
  return v_done;
end;
$$;

select setseed(0.42);
select ok(tests.random_mix(400) > 200, 'A mix of 400 random steps ran (most of them accepted)');
select ok((select count(*) from private.employee_analytics_deltas) > 0, 'Some deltas are not folded yet');
select is(tests.analytics_differences('live'), '{}'::text[],
  'Before the fold: the live numbers equal the recomputation');
create temp table live_before as select * from private.live_employee_analytics();
select ok(private.fold_employee_analytics() > 0, 'The fold folds the deltas');
select is((select count(*)::int from private.employee_analytics_deltas), 0, 'None is left');
select is(tests.analytics_differences('folded'), '{}'::text[],
  'After the fold: employee_analytics itself equals the recomputation');
select is(tests.analytics_differences('live'), '{}'::text[], 'And so do the live numbers');
select is(
  (select count(*)::int from live_before b join private.live_employee_analytics() a using (employee_id)
    where (b.hire_count, b.active_hires, b.rating_count, b.rating_sum, b.last_hired_at)
          is distinct from (a.hire_count, a.active_hires, a.rating_count, a.rating_sum, a.last_hired_at)),
  0, 'The fold changed no live number');
select is(private.fold_employee_analytics(), 0, 'A second fold has nothing to do');

select setseed(-0.7);
select ok(tests.random_mix(300) > 150, 'Another 300 steps, from another seed');
select is(tests.analytics_differences('live'), '{}'::text[], 'Live numbers equal the recomputation again');
select ok(private.fold_employee_analytics() >= 0, 'Folded again');
select is(tests.analytics_differences('folded'), '{}'::text[], 'And the table equals it');

-- ============================================================================ the last hire deleted
select tests.create_employee('pgtap-ana-last') as last_id \gset
select tests.create_hirer('pgtap-ana-early') as early \gset
select tests.create_hirer('pgtap-ana-late') as late \gset
-- (In one transaction now() does not move: the earlier hire is inserted with its time, as the service side may.)
insert into public.purchased_employees (user_id, employee_id, hired_at) values (:'early', :'last_id', now() - interval '1 day');
select tests.hire_as(:'late', 'pgtap-ana-last') is not null as h2 \gset
select private.fold_employee_analytics() >= 0 as folded2 \gset
delete from auth.users where id = :'late';
select is((tests.analytics_of('pgtap-ana-last')).last_hired_at, (tests.hire_of(:'early', 'pgtap-ana-last')).hired_at,
  'When the latest hirer is deleted, last_hired_at is the hire before (live, recounted)');
select is(tests.analytics_differences('live'), '{}'::text[], 'Live numbers equal the recomputation after it');

-- ============================================================================ active users, at the fold
update public.purchased_employees set last_used_at = now() - interval '1 day' where user_id = :'early';
select private.fold_employee_analytics() >= 0 as folded3 \gset
select is((tests.analytics_of('pgtap-ana-last')).active_users_30d, 1::bigint,
  'A hirer who used it in the last 30 days is an active user after the fold');
select is(tests.analytics_differences('folded'), '{}'::text[], 'Folded numbers equal the recomputation with it');

-- ============================================================================ who reads the table
select tests.authenticate_as_anon();
select throws_ok($$select * from public.employee_analytics$$, '42501', null, 'anon cannot read employee_analytics');
select tests.clear_authentication();
select tests.authenticate_as(:'early');
select throws_ok($$select * from public.employee_analytics$$, '42501', null,
  'A signed-in user cannot read employee_analytics (the listing gives exact numbers)');
select tests.clear_authentication();

select * from finish();
rollback;
