-- The platform's scheduled jobs (pg_cron). Every job is named aie_* and scheduled through
-- private.ensure_cron_job; `npm run status` lists each with its last run.

-- Expired fixed-window counters of the Postgres rate limiter.
select private.ensure_cron_job(
  'aie_rate_limit_cleanup', '*/10 * * * *',
  $$delete from private.rate_limit_buckets where expires_at < now() - interval '1 minute'$$
);

-- pg_cron's own run history, older than 7 days.
select private.ensure_cron_job('aie_cron_history_purge', '17 3 * * *', 'select private.purge_cron_history()');
