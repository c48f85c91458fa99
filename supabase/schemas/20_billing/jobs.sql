-- Billing's scheduled jobs (pg_cron).

-- Dead-lettered Stripe events, retried with backoff.
select private.ensure_cron_job('aie_stripe_webhook_retry', '*/5 * * * *', 'select private.retry_failed_webhook_events()');
