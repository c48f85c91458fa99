-- The gateway's scheduled jobs (pg_cron).

-- Holds of calls or instances that died.
select private.ensure_cron_job('aie_release_expired_holds', '* * * * *', 'select private.release_expired_holds()');

-- Usage records whose settlement failed when the call ended.
select private.ensure_cron_job('aie_usage_outbox', '* * * * *', 'select private.process_usage_outbox()');

-- 50 / 80 / 100 % of a plan's monthly allowance.
select private.ensure_cron_job('aie_usage_alerts', '*/15 * * * *', 'select private.check_usage_alerts()');
