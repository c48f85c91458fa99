-- The reference data and the gateway's private functions, as the API roles see them: anon and authenticated read
-- the platform rate and the request fees and can add, change or delete none of them, and hold EXECUTE on none of the
-- gateway's private functions; the service role may replay usage dead letters.
begin;
\ir ../../_helpers.psql
\ir ../../_fixtures/gateway.psql
select plan(10);

-- Prices, plans and the rate (_fixtures/gateway.psql).
select * from tests.create_gateway_fixtures() \gset
select tests.create_user_on_plan('pgtap032-uma', 'pgtap032_plan', 1000000) as uma \gset

select tests.authenticate_as_anon();
select results_eq(
  $$select (select count(*) from public.platform_token_rates where effective_to is null) = 1,
           (select count(*)::int from public.model_request_fees where model = 'pgtap032-search')$$,
  $$values (true, 3)$$,
  'anon reads the platform rate and the request fees');
select throws_ok(
  $$insert into public.platform_token_rates (micro_usd_per_mtok, effective_from, effective_to)
    values (1, '2020-01-01', '2020-02-01')$$,
  '42501', null, 'anon cannot add a platform rate');
select throws_ok($$update public.model_request_fees set micro_usd_per_request = 0$$, '42501', null,
  'anon cannot change request fees');
select tests.clear_authentication();
select tests.authenticate_as(:'uma');
select results_eq(
  $$select (select count(*) from public.platform_token_rates where effective_to is null) = 1,
           (select count(*)::int from public.model_request_fees where model = 'pgtap032-search')$$,
  $$values (true, 3)$$,
  'authenticated reads the platform rate and the request fees');
select throws_ok($$update public.platform_token_rates set micro_usd_per_mtok = 1$$, '42501', null,
  'authenticated cannot change the platform rate');
select throws_ok($$delete from public.model_request_fees$$, '42501', null,
  'authenticated cannot delete request fees');
select throws_ok(
  $$insert into public.model_request_fees (provider, model, search_context_size, micro_usd_per_request, effective_from)
    values ('perplexity', 'x', 'low', 1, '2020-01-01')$$,
  '42501', null, 'authenticated cannot add a request fee');
select tests.clear_authentication();

select is(
  (select array_agg(format('%s:%s', r, f) order by r, f)
     from unnest(array['anon', 'authenticated']) r,
          unnest(array[
            'private.replay_usage_dead_letter(text,jsonb)',
            'private._dead_letter_usage(private.usage_outbox,text)',
            'private._charge(text,text,timestamp with time zone,bigint,bigint,bigint,bigint,bigint,text)',
            'private._hold_tokens(public.model_pricing,bigint,bigint,bigint,integer,bigint)',
            'private._platform_tokens(numeric,bigint)',
            'private._call_cost_micro_usd(public.model_pricing,bigint,bigint,bigint,bigint,bigint)',
            'private._usage_records(jsonb)', 'private._settle_set(jsonb)',
            'private._alert_unpriced_model(text,text)']) f
    where has_function_privilege(r, f, 'execute')),
  null, 'anon and authenticated hold EXECUTE on none of the new private functions');
select ok(has_function_privilege('service_role', 'private.replay_usage_dead_letter(text,jsonb)', 'execute'),
  'The service role may replay dead letters');

select is(
  (select array_agg(format('%s:%s', r, f) order by r, f)
     from unnest(array['anon', 'authenticated']) r,
          unnest(array[
            'private.gateway_admit(uuid,text,text,text,bigint,integer,boolean,integer,integer,boolean,text)',
            'private.gateway_settle(jsonb)',
            'private.gateway_lease(private.lease_request)',
            'private.gateway_batch_settle(jsonb,jsonb)', 'private.rate_limit_take(text,integer,integer,integer,integer)',
            'private.gateway_release(text)', 'private.enqueue_usage(jsonb,text)',
            'private.process_usage_outbox(integer)', 'private.release_expired_holds()',
            'private.check_usage_alerts(numeric,bigint)']) f
    where has_function_privilege(r, f, 'execute')),
  null, 'anon and authenticated hold EXECUTE on none of the gateway''s private functions');

select * from finish();
rollback;
