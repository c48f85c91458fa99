-- private.gateway_batch_settle settles the calls of several users and leases, closing leases in the same batch, and
-- returns each call's cost and its user's balance after the batch: a failing record (an unknown user, a status
-- check, token counts that are not whole numbers) does not stop the others; it is parked in the usage outbox, its
-- lease keeping exactly what it cost (all that is left when it cannot even be read), until process_usage_outbox
-- settles it or dead-letters it; a lease id that is another user's hold is refused; a user short of the whole batch
-- is settled as a set all the same, every call in full, below zero.
begin;
\ir ../../_helpers.psql
\ir ../../_fixtures/gateway.psql
select plan(32);

-- Prices, plans and the rate (_fixtures/gateway.psql), with :h10, :h100, …: what calls hold on pgtap031-model.
select * from tests.create_gateway_fixtures() \gset

-- A usage record as the gateway sends it to gateway_batch_settle.
create function tests.lease_record(p_request text, p_user uuid, p_input bigint, p_output bigint, p_lease text,
                          p_status text default 'ok')
returns jsonb
language sql
as $$
  select jsonb_build_object(
    'request_id', p_request, 'user_id', p_user, 'provider', 'openai', 'model', 'pgtap031-model',
    'input_tokens', p_input, 'cached_input_tokens', 0, 'output_tokens', p_output, 'status', p_status,
    'http_status', 200, 'latency_ms', 100, 'upstream_request_id', null, 'tokens_estimated', false,
    'lease_id', p_lease, 'admitted_at', now())
$$;

-- ============================================================================ gateway_batch_settle
select tests.create_user_on_plan('pgtap031-bea', 'pgtap031_roomy', 100000) as bea \gset
select tests.create_user_on_plan('pgtap031-cid', 'pgtap031_roomy', 100000) as cid \gset
select tests.create_user_on_plan('pgtap031-dora', 'pgtap031_roomy', 100000) as dora \gset

select results_eq(
  format($$select (select granted_tokens from tests.lease(%L, 'pgtap031:lease:bea', 100, null, p_calls => 4)),
                  (select granted_tokens from tests.lease(%L, 'pgtap031:lease:cid', 100, null, p_calls => 4)),
                  (select granted_tokens from tests.lease(%L, 'pgtap031:lease:dora', 100, null, p_calls => 5))$$,
         :'bea', :'cid', :'dora'),
  format($$values (%1$s::bigint, %1$s::bigint, %2$s::bigint)$$, 4 * :h100, 5 * :h100),
  'bea and cid lease four calls of input 100, dora five');
select is((select outcome from private.gateway_admit(:'bea', 'openai', 'pgtap031-model', 'pgtap031:bea:solo', 10, null,
  false)), 'ok', 'bea also has a call admitted on its own (gateway_admit)');
select is(tests.held(:'bea'), (4 * :h100 + :h10)::bigint, 'bea holds her lease and a call admitted on its own');

-- What the batches' calls cost (all admitted now, at the new price).
select ceil((100 * 3000000::numeric + 50 * 6000000::numeric) / :rate)::bigint as c_100_50,
       ceil((80 * 3000000::numeric + 20 * 6000000::numeric) / :rate)::bigint as c_80_20,
       ceil((300 * 3000000::numeric + 100 * 6000000::numeric) / :rate)::bigint as c_300_100,
       ceil((60 * 3000000::numeric + 40 * 6000000::numeric) / :rate)::bigint as c_60_40,
       ceil((30 * 3000000::numeric + 20 * 6000000::numeric) / :rate)::bigint as c_30_20,
       ceil((10 * 3000000::numeric + 10 * 6000000::numeric) / :rate)::bigint as c_10_10,
       ceil((40 * 3000000::numeric + 30 * 6000000::numeric) / :rate)::bigint as c_40_30,
       ceil((100 * 1000000::numeric + 50 * 2000000::numeric) / :rate)::bigint as c_100_50_old \gset

-- Everything settles: two users' calls, and bea's lease closed in the same batch.
create table tests.batch1 as
select * from private.gateway_batch_settle(
  jsonb_build_array(tests.lease_record('pgtap031:batch1:bea-1', :'bea', 100, 50, 'pgtap031:lease:bea'),
                    tests.lease_record('pgtap031:batch1:cid-1', :'cid', 300, 100, 'pgtap031:lease:cid'),
                    tests.lease_record('pgtap031:batch1:bea-2', :'bea', 80, 20, 'pgtap031:lease:bea')),
  jsonb_build_array(jsonb_build_object('lease_id', 'pgtap031:lease:bea', 'user_id', :'bea')));
select bag_eq('select request_id, error, cost_tokens, balance from tests.batch1',
  format($$values ('pgtap031:batch1:bea-1', null::text, %1$s::bigint, %3$s::bigint),
                  ('pgtap031:batch1:bea-2', null, %2$s, %3$s), ('pgtap031:batch1:cid-1', null, %4$s, %5$s),
                  ('pgtap031:lease:bea', null, null, null)$$,
         :c_100_50, :c_80_20, 100000 - :c_100_50 - :c_80_20, :c_300_100, 100000 - :c_300_100),
  'The batch returns one row per record and per closed lease, all without error, each call with its cost and its user''s balance after the batch');
select is((select count(*)::int from public.token_usage where request_id like 'pgtap031:batch1:%'), 3,
  'All three records of the batch are settled');
select is_empty($$select 1 from private.token_holds where request_id = 'pgtap031:lease:bea'$$,
  'The closed lease''s row is gone');
select results_eq(format($$select tests.held(%1$L), tests.balance(%1$L)$$, :'bea'),
  format($$values (%s::bigint, %s::bigint)$$, :h10, 100000 - :c_100_50 - :c_80_20),
  'bea''s held is back to what her other hold keeps; she is debited what her two calls cost');
select results_eq(format($$select tests.hold('pgtap031:lease:cid'), tests.held(%1$L), tests.balance(%1$L)$$, :'cid'),
  format($$values (%1$s::bigint, %1$s::bigint, %2$s::bigint)$$, 4 * :h100 - :c_300_100, 100000 - :c_300_100),
  'What cid''s call cost came off his lease, which stays open');

-- One record fails (an unknown user) and one is refused by token_usage's status check: the others settle.
select extensions.gen_random_uuid() as nobody \gset
create table tests.batch2 as
select * from private.gateway_batch_settle(
  jsonb_build_array(tests.lease_record('pgtap031:batch2:dora-1', :'dora', 60, 40, 'pgtap031:lease:dora'),
                    tests.lease_record('pgtap031:batch2:dora-2', :'dora', 30, 20, 'pgtap031:lease:dora', 'exploded'),
                    tests.lease_record('pgtap031:batch2:nobody', :'nobody', 5, 5, null),
                    tests.lease_record('pgtap031:batch2:cid-2', :'cid', 30, 20, 'pgtap031:lease:cid')),
  jsonb_build_array(jsonb_build_object('lease_id', 'pgtap031:lease:dora', 'user_id', :'dora')));
select bag_eq('select request_id, split_part(error, '':'', 1) from tests.batch2',
  $$values ('pgtap031:batch2:dora-1', null::text), ('pgtap031:batch2:dora-2', '23514'),
           ('pgtap031:batch2:nobody', 'PB404'), ('pgtap031:batch2:cid-2', null), ('pgtap031:lease:dora', null)$$,
  'A failing batch returns each record''s error (23514 status check, PB404 unknown user) and null for the rest');
select results_eq(
  $$select request_id from public.token_usage where request_id like 'pgtap031:batch2:%' order by request_id collate "C"$$,
  $$values ('pgtap031:batch2:cid-2'), ('pgtap031:batch2:dora-1')$$,
  'The records that can settle are settled despite the failing ones');
select results_eq(
  $$select request_id, split_part(last_error, ':', 1), applied_at is null from private.usage_outbox
     where request_id like 'pgtap031:batch2:%' order by request_id collate "C"$$,
  $$values ('pgtap031:batch2:dora-2', '23514', true), ('pgtap031:batch2:nobody', 'PB404', true)$$,
  'The failing records are parked in the usage outbox with their errors');
-- A user's calls settle before the leases they were admitted under are given back, also call by call.
select results_eq(
  $$select tests.hold('pgtap031:lease:dora'), tests.hold('pgtap031:batch2:dora-2')$$,
  format($$values (null::bigint, %s::bigint)$$, :c_30_20),
  'What the parked record cost stays held under its own request id; the closed lease is gone');
select results_eq(format($$select tests.held(%1$L), tests.balance(%1$L)$$, :'dora'),
  format($$values (%s::bigint, %s::bigint)$$, :c_30_20, 100000 - :c_60_40),
  'Everything else of dora''s lease is given back (held: the parked record''s cost); her settled call is debited');
select results_eq(format($$select tests.hold('pgtap031:lease:cid'), tests.held(%L)$$, :'cid'),
  format($$values (%1$s::bigint, %1$s::bigint)$$, 4 * :h100 - :c_300_100 - :c_30_20),
  'cid''s call in the failing batch came off his lease as usual');

-- The outbox settles the parked record once it can succeed: the kept tokens pay for it, the lease is gone.
update private.usage_outbox set payload = payload || '{"status": "ok"}' where request_id = 'pgtap031:batch2:dora-2';
select ok(private.process_usage_outbox() >= 1, 'process_usage_outbox applies the repaired record');
select results_eq(
  $$select status, input_tokens + output_tokens, debited_tokens from public.token_usage
     where request_id = 'pgtap031:batch2:dora-2'$$,
  format($$values ('ok', 50::bigint, %s::bigint)$$, :c_30_20),
  'The parked record is settled and debited in full');
select is_empty($$select 1 from private.token_holds where request_id = 'pgtap031:lease:dora'$$,
  'The lease kept for the parked record is gone once it is settled');
select results_eq(format($$select tests.held(%1$L), tests.balance(%1$L)$$, :'dora'),
  format($$values (0::bigint, %s::bigint)$$, 100000 - :c_60_40 - :c_30_20),
  'dora holds nothing any more and paid for both of her calls');

-- adam has a call admitted on its own (gateway_admit), held under its request id pgtap031:adam:1.
select tests.create_user_on_plan('pgtap031-adam', 'pgtap031_roomy', 100000) as adam \gset
select outcome as adam_admitted from private.gateway_admit(:'adam', 'openai', 'pgtap031-model', 'pgtap031:adam:1',
  10, null, false) \gset

-- ============================================================================ found in review
-- A lease id that is another user's hold is refused, and nothing is held for it.
select throws_ok(
  format($$select * from tests.lease(%L, 'pgtap031:adam:1', 10, null)$$, :'bea'),
  'PB409', null, 'A lease under another user''s hold id is refused');
select is(tests.held(:'bea'), :h10::bigint, 'and the refused lease changed nothing of the caller''s held');

-- A parked record whose token counts are not whole numbers does not abort its batch.
create table tests.batch3 as
select * from private.gateway_batch_settle(
  jsonb_build_array(tests.lease_record('pgtap031:batch3:cid-1', :'cid', 10, 10, 'pgtap031:lease:cid'),
                    tests.lease_record('pgtap031:batch3:cid-2', :'cid', 10, 10, 'pgtap031:lease:cid') || '{"input_tokens": 1.5}'),
  jsonb_build_array(jsonb_build_object('lease_id', 'pgtap031:lease:cid', 'user_id', :'cid')));
select bag_eq('select request_id, split_part(error, '':'', 1) from tests.batch3',
  $$values ('pgtap031:batch3:cid-1', null::text), ('pgtap031:batch3:cid-2', '22P02'), ('pgtap031:lease:cid', null)$$,
  'A record with a fractional token count is parked; the rest of its batch settles');
select results_eq(
  format($$select tests.hold('pgtap031:lease:cid'), tests.hold('pgtap031:batch3:cid-2'),
                  tests.held(%L)$$, :'cid'),
  format($$values (null::bigint, %1$s::bigint, %1$s::bigint)$$, 4 * :h100 - :c_300_100 - :c_30_20 - :c_10_10),
  'A record whose counts cannot be read keeps all that is left of its lease held for it (its cost is unknown)');

-- A lease given back in a later batch than a parked record of it still leaves what that record used held.
select tests.create_user_on_plan('pgtap031-eve', 'pgtap031_roomy', 100000) as eve \gset
select is((select granted_tokens from tests.lease(:'eve', 'pgtap031:lease:eve', 100, null, p_calls => 3)),
  (3 * :h100)::bigint, 'eve leases three calls of input 100');
create table tests.batch4 as
select * from private.gateway_batch_settle(
  jsonb_build_array(tests.lease_record('pgtap031:batch4:eve-1', :'eve', 40, 30, 'pgtap031:lease:eve', 'exploded')));
create table tests.batch5 as
select * from private.gateway_batch_settle('[]',
  jsonb_build_array(jsonb_build_object('lease_id', 'pgtap031:lease:eve', 'user_id', :'eve')));
select results_eq(
  format($$select tests.hold('pgtap031:lease:eve'), tests.hold('pgtap031:batch4:eve-1'),
                  tests.held(%L)$$, :'eve'),
  format($$values (null::bigint, %1$s::bigint, %1$s::bigint)$$, :c_40_30),
  'The lease went back in the later batch, all but the parked record''s cost, held under its own id');
update private.usage_outbox set payload = payload || '{"status": "ok"}' where request_id = 'pgtap031:batch4:eve-1';
select private.process_usage_outbox();
select results_eq(
  format($$select (select debited_tokens from public.token_usage where request_id = 'pgtap031:batch4:eve-1'),
                  tests.held(%1$L), tests.balance(%1$L)$$, :'eve'),
  format($$values (%s::bigint, 0::bigint, %s::bigint)$$, :c_40_30, 100000 - :c_40_30),
  'The outbox settles it in full from that hold, and nothing stays held');
select results_eq(
  format($$select dead_at is not null, split_part(dead_reason, ':', 1), applied_at is null, tests.held(%L)
             from private.usage_outbox where request_id = 'pgtap031:batch3:cid-2'$$, :'cid'),
  $$values (true, '22P02', true, 0::bigint)$$,
  'The same run dead-letters the unreadable record at once and gives back what it kept held');

-- ============================================================================ batches settled as a set
-- A batch whose user cannot pay for all of it is settled as a set all the same: every call in full, below zero.
select tests.create_user_on_plan('pgtap031-fay', 'pgtap031_roomy', 3 * :c_60_40 / 2) as fay \gset
create table tests.batch6 as
select * from private.gateway_batch_settle(
  jsonb_build_array(tests.lease_record('pgtap031:batch6:fay-1', :'fay', 60, 40, 'pgtap031:lease:fay-none'),
                    tests.lease_record('pgtap031:batch6:fay-2', :'fay', 60, 40, 'pgtap031:lease:fay-none')));
select results_eq(
  $$select t.request_id, t.debited_tokens, l.delta, l.balance_after
      from public.token_usage t join public.token_transactions l on l.reference = 'usage:' || t.request_id
     where t.request_id like 'pgtap031:batch6:%' order by t.request_id collate "C"$$,
  format($$values ('pgtap031:batch6:fay-1', %1$s::bigint, %2$s::bigint, %3$s::bigint),
                  ('pgtap031:batch6:fay-2', %1$s::bigint, %2$s::bigint, %4$s::bigint)$$,
         :c_60_40, -:c_60_40, 3 * :c_60_40 / 2 - :c_60_40, 3 * :c_60_40 / 2 - 2 * :c_60_40),
  'A user short of the whole batch is debited every call in full, the ledger going below zero on the second');
select results_eq(
  format($$select tests.balance(%1$L), (select sum(delta) from public.token_transactions where user_id = %1$L)$$,
         :'fay'),
  format($$values (%1$s::bigint, %1$s::numeric)$$, 3 * :c_60_40 / 2 - 2 * :c_60_40),
  'The balance is below zero by the overage, and equals the sum of the ledger');
select bag_eq('select request_id, error, cost_tokens, balance from tests.batch6',
  format($$values ('pgtap031:batch6:fay-1', null::text, %1$s::bigint, %2$s::bigint),
                  ('pgtap031:batch6:fay-2', null, %1$s, %2$s)$$, :c_60_40, 3 * :c_60_40 / 2 - 2 * :c_60_40),
  'The batch returns each call''s cost and the balance after the batch, below zero');

-- The usual batch: several users' calls under their leases, priced when admitted, an unpriced model alerted.
select tests.create_user_on_plan('pgtap031-gil', 'pgtap031_roomy', 100000) as gil \gset
select is((select granted_tokens from tests.lease(:'gil', 'pgtap031:lease:gil', 100, null, p_calls => 3)),
  (3 * :h100)::bigint, 'gil leases three calls');
create table tests.batch7 as
select * from private.gateway_batch_settle(
  jsonb_build_array(
    tests.lease_record('pgtap031:batch7:gil-1', :'gil', 100, 50, 'pgtap031:lease:gil') || jsonb_build_object('admitted_at', :'t_change'::timestamptz - interval '1 minute'),
    tests.lease_record('pgtap031:batch7:gil-2', :'gil', 100, 50, 'pgtap031:lease:gil'),
    tests.lease_record('pgtap031:batch7:gil-3', :'gil', 10, 5, 'pgtap031:lease:gil') || '{"model": "pgtap031-unpriced-set"}'));
select results_eq(
  format($$select array_agg(t.pricing_id order by t.request_id collate "C"), tests.hold('pgtap031:lease:gil'),
                  tests.held(%1$L), tests.balance(%1$L),
                  (select count(*)::int from private.admin_alerts where details ->> 'model' = 'pgtap031-unpriced-set')
             from public.token_usage t where t.request_id like 'pgtap031:batch7:%%'$$, :'gil'),
  format($$values (array[%s, %s, null]::bigint[], %s::bigint, %3$s::bigint, %s::bigint, 1)$$,
         :'price_old', :'price_new', 3 * :h100 - :c_100_50_old - :c_100_50 - 15,
         100000 - :c_100_50_old - :c_100_50 - 15),
  'Each call priced as when admitted (old, new, none: its 15 raw tokens), its cost off the lease and the balance, one operator alert');

-- A batch settled call by call (one of its records fails) reports, like one settled as a set, each call's user's
-- balance after the batch.
select tests.create_user_on_plan('pgtap031-hal', 'pgtap031_roomy', 100000) as hal \gset
create table tests.batch8 as
select * from private.gateway_batch_settle(
  jsonb_build_array(tests.lease_record('pgtap031:batch8:hal-1', :'hal', 100, 50, 'pgtap031:lease:hal-none'),
                    tests.lease_record('pgtap031:batch8:hal-2', :'hal', 100, 50, 'pgtap031:lease:hal-none'),
                    tests.lease_record('pgtap031:batch8:hal-3', :'hal', 100, 50, 'pgtap031:lease:hal-none', 'exploded')));
-- Call by call too, every settled record reports its user's balance after the whole batch.
select bag_eq('select request_id, split_part(error, '':'', 1), cost_tokens, balance from tests.batch8',
  format($$values ('pgtap031:batch8:hal-1', null::text, %1$s::bigint, %2$s::bigint),
                  ('pgtap031:batch8:hal-2', null, %1$s, %2$s), ('pgtap031:batch8:hal-3', '23514', null, null)$$,
         :c_100_50, 100000 - 2 * :c_100_50),
  'A batch settled call by call returns each call''s cost and its user''s balance after the whole batch');

select * from finish();
rollback;
