-- The usage outbox: enqueue_usage parks a record once per request id, with what it cost held for it off its lease
-- (all of the lease when its counts cannot be read); process_usage_outbox applies it once, discards one of a user who
-- no longer exists, retries another failure with backoff (1, 2, 4 ... minutes, at most an hour) and dead-letters a
-- data exception at once and any other failure on its 10th try, releasing its hold and alerting the operator;
-- replay_usage_dead_letter settles a corrected record once; a settled record re-sent changes nothing.
begin;
\ir ../../_helpers.psql
\ir ../../_fixtures/gateway.psql
select plan(32);

-- Prices, plans and the rate (_fixtures/gateway.psql).
select * from tests.create_gateway_fixtures() \gset
select tests.create_user_on_plan('gw-ivy', 'pro', 1000000) as ivy \gset

-- ============================================================================ the usage outbox
select private.enqueue_usage(jsonb_build_object(
  'request_id', 'pgtap030:outbox:1', 'user_id', :'ivy', 'provider', 'openai', 'model', 'pgtap030-nocache',
  'input_tokens', 100, 'cached_input_tokens', 0, 'output_tokens', 50, 'status', 'ok', 'http_status', 200,
  'latency_ms', 5, 'upstream_request_id', null, 'tokens_estimated', false), 'lock timeout');
select private.enqueue_usage(jsonb_build_object('request_id', 'pgtap030:outbox:1', 'user_id', :'ivy'), 'again');
select results_eq($$select last_error, applied_at is null from private.usage_outbox where request_id = 'pgtap030:outbox:1'$$,
  $$values ('lock timeout', true)$$, 'enqueue_usage parks a record once per request id');
select private.enqueue_usage(jsonb_build_object(
  'request_id', 'pgtap030:outbox:2', 'user_id', :'ivy', 'provider', 'openai',
  'model', 'pgtap030-nocache', 'input_tokens', 1, 'output_tokens', 1, 'status', 'not-a-status'), null);
select private.enqueue_usage(jsonb_build_object(
  'request_id', 'pgtap030:outbox:3', 'user_id', extensions.gen_random_uuid(), 'provider', 'openai',
  'model', 'pgtap030-nocache', 'input_tokens', 1, 'output_tokens', 1, 'status', 'ok'), null);
select ok(private.process_usage_outbox() >= 1, 'process_usage_outbox applies waiting records');
select results_eq(
  $$select input_tokens, output_tokens, cost_micro_usd, debited_tokens from public.token_usage
     where request_id = 'pgtap030:outbox:1'$$,
  format($$values (100::bigint, 50::bigint, 300::bigint, %s::bigint)$$,
         ceil((100 * 2000000::numeric + 50 * 2000000::numeric) / :rate)),
  'The parked record becomes its usage row, billed at its price');
select results_eq(
  $$select applied_at is not null, attempts, last_error from private.usage_outbox where request_id = 'pgtap030:outbox:1'$$,
  $$values (true, 1, null::text)$$,
  'The applied record is marked applied');
select results_eq(
  $$select applied_at is null, dead_at is null, attempts, split_part(last_error, ':', 1), next_attempt_at > now()
      from private.usage_outbox where request_id = 'pgtap030:outbox:2'$$,
  $$values (true, true, 1, '23514', true)$$,
  'A record that cannot be applied for now (a check violation, not a data exception) stays, with its error, and waits');
select results_eq(
  $$select applied_at is not null, last_error from private.usage_outbox where request_id = 'pgtap030:outbox:3'$$,
  $$values (true, 'discarded: the user no longer exists')$$,
  'A record of a user who no longer exists is discarded, not retried forever');
select private.process_usage_outbox();
select is((select count(*)::int from public.token_usage where request_id = 'pgtap030:outbox:1'), 1,
  'Processing again adds nothing');
select is((select attempts from private.usage_outbox where request_id = 'pgtap030:outbox:2'), 1,
  'A failed record is not retried before its next attempt time');

-- ============================================================================ the outbox: dead letters
select tests.create_user_on_plan('pgtap032-uma', 'pgtap032_plan', 1000000) as uma \gset
select ceil((1000 * 2000000::numeric + 500 * 8000000::numeric) / :rate)::bigint as uma_hold \gset
select is((select granted_tokens from private.gateway_lease(tests.lease_request(:'uma', 'openai', 'pgtap032:lease:uma', 'pgtap032-defaults',
  1000, 500, p_calls => 2, p_check_limits => false))), (2 * :uma_hold)::bigint, 'uma leases two calls');

-- A record with a fractional token count can never apply: dead-lettered at once.
select tests.usage_record('pgtap032:frac', :'uma', 'openai', 'pgtap032-defaults', 12.5, 100,
                 '{"lease_id": "pgtap032:lease:uma"}') as frac_record \gset
select private.enqueue_usage(:'frac_record', 'lock timeout');
select results_eq(
  format($$select tests.hold('pgtap032:lease:uma'), tests.hold('pgtap032:frac'), tests.held(%L)$$, :'uma'),
  format($$values (null::bigint, %1$s::bigint, %1$s::bigint)$$, 2 * :uma_hold),
  'A parked record whose counts cannot be read keeps all of its lease held for it');
select private.process_usage_outbox();
select results_eq(
  $$select attempts, dead_at, dead_reason, last_error = dead_reason, applied_at
      from private.usage_outbox where request_id = 'pgtap032:frac'$$,
  $$values (1, now(), '22P02: invalid input syntax for type bigint: "12.5"', true, null::timestamptz)$$,
  'A record with a fractional token count is dead-lettered on its first try, with its reason');
select results_eq(
  format($$select tests.hold('pgtap032:frac'), tests.held(%1$L), tests.balance(%1$L)$$, :'uma'),
  $$values (null::bigint, 0::bigint, 1000000::bigint)$$,
  'Its hold is released (the user is not blocked by it) and nothing is debited');
select results_eq(
  $$select kind, user_id, details, acknowledged_at from private.admin_alerts
     where dedupe_key = 'usage_dead_letter:pgtap032:frac'$$,
  format($$values ('usage_dead_letter', %L::uuid,
                   '{"request_id": "pgtap032:frac", "error": "22P02: invalid input syntax for type bigint: \"12.5\"",
                     "attempts": 1}'::jsonb, null::timestamptz)$$, :'uma'),
  'An operator alert is raised for the dead letter');
select is(
  (select s.usage_dead_letters - (select count(*) from private.usage_outbox o
                                   where o.dead_at is not null and o.applied_at is null
                                     and o.request_id not like 'pgtap032:%')
     from private.gateway_status s),
  1::bigint, 'gateway_status counts the dead letter');
select private.process_usage_outbox();
select is((select attempts from private.usage_outbox where request_id = 'pgtap032:frac'), 1,
  'A dead letter is not retried');

-- replay_usage_dead_letter: raises while the record still cannot apply, settles it once corrected.
select throws_ok($$select private.replay_usage_dead_letter('pgtap032:frac')$$, '22P02', null,
  'Replaying the record as it is raises its error again');
select throws_ok(
  format($$select private.replay_usage_dead_letter('pgtap032:frac', %L::jsonb || '{"request_id": "pgtap032:other"}')$$,
         :'frac_record'),
  '22023', null, 'A corrected record must keep its request id (22023)');
select results_eq(
  $$select dead_at is not null, applied_at is null, (select acknowledged_at from private.admin_alerts
                                                     where dedupe_key = 'usage_dead_letter:pgtap032:frac')
      from private.usage_outbox where request_id = 'pgtap032:frac'$$,
  $$values (true, true, null::timestamptz)$$,
  'A failed replay changes nothing: still dead, its alert open');
select ceil((13 * 2000000::numeric + 100 * 8000000::numeric) / :rate)::bigint as frac_cost \gset
select tests.authenticate_as_service_role();
select results_eq(
  format($$select request_id, input_tokens, debited_tokens
             from private.replay_usage_dead_letter('pgtap032:frac', %L::jsonb || '{"input_tokens": 13}')$$,
         :'frac_record'),
  format($$values ('pgtap032:frac', 13::bigint, %s::bigint)$$, :frac_cost),
  'The service role replays the corrected record: it is settled at its price');
select tests.clear_authentication();
select results_eq(
  $$select applied_at, dead_at, (payload ->> 'input_tokens')::int, attempts from private.usage_outbox
     where request_id = 'pgtap032:frac'$$,
  $$values (now(), null::timestamptz, 13, 2)$$,
  'The outbox row is applied, no longer dead, with the corrected payload');
select is((select acknowledged_at from private.admin_alerts where dedupe_key = 'usage_dead_letter:pgtap032:frac'),
  now(), 'The dead letter''s alert is acknowledged');
select throws_ok($$select private.replay_usage_dead_letter('pgtap032:frac', null)$$, 'PB404', null,
  'It cannot be replayed twice (PB404: not a dead letter any more)');
select results_eq(
  format($$select tests.balance(%1$L), (select count(*)::int from public.token_transactions
                                          where reference = 'usage:pgtap032:frac')$$, :'uma'),
  format($$values (%s::bigint, 1)$$, 1000000 - :frac_cost),
  'The replayed record is debited once');
select is(
  (select s.usage_dead_letters - (select count(*) from private.usage_outbox o
                                   where o.dead_at is not null and o.applied_at is null
                                     and o.request_id not like 'pgtap032:%')
     from private.gateway_status s),
  0::bigint, 'gateway_status counts it no longer');

-- A record failing for another reason (here token_usage's status check) is retried with backoff, and given up on its
-- 10th try.
select is((select granted_tokens from private.gateway_lease(tests.lease_request(:'uma', 'openai', 'pgtap032:lease:uma-2', 'pgtap032-defaults',
  1000, 500, p_check_limits => false))), :uma_hold::bigint, 'uma leases another call');
select ceil((100 * 2000000::numeric + 50 * 8000000::numeric) / :rate)::bigint as bad_cost \gset
select private.enqueue_usage(tests.usage_record('pgtap032:bad', :'uma', 'openai', 'pgtap032-defaults', 100, 50,
                                       '{"status": "exploded", "lease_id": "pgtap032:lease:uma-2"}'), 'lock timeout');
select results_eq(
  $$select tests.hold('pgtap032:lease:uma-2'), tests.hold('pgtap032:bad')$$,
  format($$values (%s::bigint, %s::bigint)$$, :uma_hold - :bad_cost, :bad_cost),
  'A parked record that can be read keeps what it cost held for it, off its lease');
create table tests.backoff (run integer, attempts integer, wait interval, dead boolean, held bigint);
do $$
begin
  for i in 1 .. 9 loop
    update private.usage_outbox set next_attempt_at = now() where request_id = 'pgtap032:bad';
    perform private.process_usage_outbox();
    insert into tests.backoff
    select i, attempts, next_attempt_at - now(), dead_at is not null, tests.hold('pgtap032:bad')
      from private.usage_outbox where request_id = 'pgtap032:bad';
  end loop;
end
$$;
select results_eq('select attempts, wait, dead, held from tests.backoff order by run',
  format($$values (1, interval '1 minute', false, %1$s::bigint), (2, interval '2 minutes', false, %1$s),
                  (3, interval '4 minutes', false, %1$s), (4, interval '8 minutes', false, %1$s),
                  (5, interval '16 minutes', false, %1$s), (6, interval '32 minutes', false, %1$s),
                  (7, interval '1 hour', false, %1$s), (8, interval '1 hour', false, %1$s),
                  (9, interval '1 hour', false, %1$s)$$, :bad_cost),
  'Each failed try waits twice as long before the next (1, 2, 4 ... minutes, at most an hour), the record still held');
update private.usage_outbox set next_attempt_at = now() where request_id = 'pgtap032:bad';
select private.process_usage_outbox();
select results_eq(
  $$select attempts, dead_at, split_part(dead_reason, ':', 1), applied_at from private.usage_outbox
     where request_id = 'pgtap032:bad'$$,
  $$values (10, now(), '23514', null::timestamptz)$$,
  'The 10th failed try dead-letters the record, with its reason');
select results_eq(
  format($$select tests.hold('pgtap032:bad'), tests.held(%L),
                  (select (details ->> 'attempts')::int from private.admin_alerts
                    where dedupe_key = 'usage_dead_letter:pgtap032:bad')$$, :'uma'),
  format($$values (null::bigint, %s::bigint, 10)$$, :uma_hold - :bad_cost),
  'Its hold is released (the rest of its lease stays) and an alert says it took 10 tries');

-- A record already settled, re-sent, changes nothing and leaves no hold.
select tests.create_user_on_plan('pgtap032-vic', 'pgtap032_plan', 100000) as vic \gset
select outcome as vic_admitted from private.gateway_admit(:'vic', 'openai', 'pgtap032-defaults', 'pgtap032:vic:1', 100,
  50, false) \gset
select tests.usage_record('pgtap032:vic:1', :'vic', 'openai', 'pgtap032-defaults', 100, 50) as vic_record \gset
select id as vic_usage from private.gateway_settle(:'vic_record') \gset
select granted_tokens as vic_lease from private.gateway_lease(tests.lease_request(:'vic', 'openai', 'pgtap032:lease:vic',
  'pgtap032-defaults', 100, 50, p_check_limits => false)) \gset
select tests.balance(:'vic') as vic_balance, tests.held(:'vic') as vic_held \gset
select is((private.gateway_settle(:'vic_record'::jsonb || '{"input_tokens": 99999, "lease_id": "pgtap032:lease:vic"}')).id,
  :'vic_usage'::bigint, 'A settled record re-sent to gateway_settle returns its usage row');
select private.enqueue_usage(:'vic_record'::jsonb || '{"lease_id": "pgtap032:lease:vic"}', 'again');
select results_eq(
  format($$select tests.balance(%1$L), tests.held(%1$L), tests.hold('pgtap032:lease:vic'), tests.hold('pgtap032:vic:1'),
                  (select count(*)::int from public.token_transactions where user_id = %1$L),
                  (select count(*)::int from private.usage_outbox where request_id = 'pgtap032:vic:1')$$, :'vic'),
  format($$values (%s::bigint, %s::bigint, %s::bigint, null::bigint, 2, 0)$$, :vic_balance, :vic_held, :vic_lease),
  'Re-sent to gateway_settle and enqueue_usage it changes nothing: no debit, no outbox row, no hold, the lease untouched');
-- A hold left under its request id (as an outbox copy racing its settlement could) goes back when it is re-sent.
insert into private.token_holds (request_id, user_id, provider, model, amount, expires_at)
values ('pgtap032:vic:1', :'vic', 'openai', 'pgtap032-defaults', 50, now() + interval '1 day');
update public.token_balances set held = held + 50 where user_id = :'vic';
select id as vic_again from private.gateway_settle(:'vic_record') \gset
select results_eq(
  format($$select tests.hold('pgtap032:vic:1'), tests.held(%1$L), tests.balance(%1$L)$$, :'vic'),
  format($$values (null::bigint, %s::bigint, %s::bigint)$$, :vic_held, :vic_balance),
  'A hold parked for a settled record is released when the record is re-sent, and nothing is debited');

select * from finish();
rollback;
