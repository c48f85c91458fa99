create or replace view private.gateway_status as
select
  (select count(*) from private.usage_outbox where applied_at is null and dead_at is null) as usage_outbox_waiting,
  (select min(created_at) from private.usage_outbox where applied_at is null and dead_at is null) as usage_outbox_oldest,
  (select count(*) from private.usage_outbox where applied_at is null and dead_at is null and attempts >= 5)
    as usage_outbox_stuck,
  (select count(*) from private.token_holds) as holds_active,
  (select count(*) from private.token_holds where expires_at < now()) as holds_expired,
  (select count(*) from public.token_usage where price_missing and created_at > now() - interval '1 day')
    as unpriced_calls_24h,
  (select count(*) from private.admin_alerts where acknowledged_at is null) as admin_alerts_open,
  (select count(*) from private.usage_outbox where dead_at is not null and applied_at is null) as usage_dead_letters,
  (select count(*) from public.token_balances where balance < 0) as balances_in_debt;

comment on view private.gateway_status is
  'For operators: usage records waiting in the outbox (stuck ones, dead letters), holds in flight or expired, '
  'unpriced calls of the last day, unacknowledged admin alerts, balances in debt. (Records parked in Redis while '
  'the database was down: LLEN aie:usage_outbox.)';

grant select on private.gateway_status to service_role;
