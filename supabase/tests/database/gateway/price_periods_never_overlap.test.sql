-- The price lists keep periods that never overlap: a model's prices (per provider), the platform token rate and a
-- model's request fee per search context size each refuse a period overlapping one they have (23P01) and an empty
-- one, and accept periods that meet end to start; at a boundary the new period's price is in force.
begin;
\ir ../../_helpers.psql
\ir ../../_fixtures/gateway.psql
select plan(16);

-- Prices, plans and the rate (_fixtures/gateway.psql).
select * from tests.create_gateway_fixtures() \gset

-- ============================================================================ price history
insert into public.model_pricing
  (provider, model, input_micro_usd_per_mtok, output_micro_usd_per_mtok, effective_from, effective_to)
values ('openai', 'pgtap030-history', 1, 1, '2026-01-01', '2026-02-01');
select id as history_jan from public.model_pricing where model = 'pgtap030-history' \gset

select throws_ok(
  $$insert into public.model_pricing (provider, model, input_micro_usd_per_mtok, output_micro_usd_per_mtok,
      effective_from) values ('openai', 'pgtap030-history', 2, 2, '2026-01-15')$$,
  '23P01', null, 'A period overlapping the model''s existing period is refused (23P01)');
select throws_ok(
  $$insert into public.model_pricing (provider, model, input_micro_usd_per_mtok, output_micro_usd_per_mtok,
      effective_from, effective_to) values ('openai', 'pgtap030-history', 2, 2, '2025-12-01', '2026-01-02')$$,
  '23P01', null, 'A period overlapping the start of the existing one is refused (23P01)');
select throws_ok(
  $$insert into public.model_pricing (provider, model, input_micro_usd_per_mtok, output_micro_usd_per_mtok,
      effective_from) values ('openai', 'pgtap030-model', 2, 2, '2026-06-01')$$,
  '23P01', null, 'A second open-ended price for a model that has one in force is refused (23P01)');
select lives_ok(
  $$insert into public.model_pricing (provider, model, input_micro_usd_per_mtok, output_micro_usd_per_mtok,
      effective_from) values ('openai', 'pgtap030-history', 3, 3, '2026-02-01')$$,
  'A period starting where the previous one ends is accepted');
select lives_ok(
  $$insert into public.model_pricing (provider, model, input_micro_usd_per_mtok, output_micro_usd_per_mtok,
      effective_from, effective_to) values ('openai', 'pgtap030-history', 4, 4, '2025-12-01', '2026-01-01')$$,
  'A period ending where the next one starts is accepted');
select lives_ok(
  $$insert into public.model_pricing (provider, model, input_micro_usd_per_mtok, output_micro_usd_per_mtok,
      effective_from, effective_to) values ('anthropic', 'pgtap030-history', 5, 5, '2026-01-01', '2026-02-01')$$,
  'The same model name of another provider has its own history');
select throws_ok(
  $$insert into public.model_pricing (provider, model, input_micro_usd_per_mtok, output_micro_usd_per_mtok,
      effective_from, effective_to) values ('openai', 'pgtap030-other', 1, 1, '2026-02-01', '2026-02-01')$$,
  '23514', null, 'An empty period (effective_to = effective_from) is refused');
select is((select input_micro_usd_per_mtok from private._price_at('openai', 'pgtap030-history', '2026-02-01')), 3::bigint,
  'At the boundary the new period''s price is in force');
select is((select id from private._price_at('openai', 'pgtap030-history', '2026-01-31 23:59:59')), :'history_jan'::bigint,
  'Just before the boundary the old period''s price is in force');

-- ============================================================================ platform rates and request fees
select throws_ok(
  $$insert into public.platform_token_rates (micro_usd_per_mtok, effective_from) values (1000000, '2026-06-01')$$,
  '23P01', null, 'A platform rate overlapping the one in force is refused (23P01)');
select throws_ok(
  $$insert into public.platform_token_rates (micro_usd_per_mtok, effective_from, effective_to)
    values (1000000, '2025-06-01', '2026-01-02')$$,
  '23P01', null, 'A platform rate overlapping the start of the one in force is refused (23P01)');
select lives_ok(
  $$insert into public.platform_token_rates (micro_usd_per_mtok, effective_from, effective_to)
    values (1000000, '2025-06-01', '2026-01-01')$$,
  'A platform rate ending where the next one starts is accepted');
select throws_ok(
  $$insert into public.platform_token_rates (micro_usd_per_mtok, effective_from, effective_to)
    values (1000000, '2025-01-01', '2025-01-01')$$,
  '23514', null, 'An empty period of the platform rate is refused');
select throws_ok(
  $$insert into public.platform_token_rates (micro_usd_per_mtok, effective_from, effective_to)
    values (0, '2024-01-01', '2024-02-01')$$,
  '23514', null, 'A platform rate of zero is refused');
select throws_ok(
  $$insert into public.model_request_fees (provider, model, search_context_size, micro_usd_per_request, effective_from)
    values ('perplexity', 'pgtap032-search', 'low', 1, '2026-06-01')$$,
  '23P01', null, 'A request fee overlapping the same model''s fee for the same size is refused (23P01)');
select lives_ok(
  $$insert into public.model_request_fees (provider, model, search_context_size, micro_usd_per_request, effective_from)
    values ('perplexity', 'pgtap032-other', 'low', 1, '2026-06-01')$$,
  'Another model''s fees have their own history');

select * from finish();
rollback;
