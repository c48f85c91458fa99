-- The agents' scheduled jobs (pg_cron).

-- Runs whose worker stopped sending heartbeats are expired, and their sessions freed.
select private.ensure_cron_job('aie_agent_runs_expire', '* * * * *', 'select private.expire_stale_agent_runs()');

-- Streamed events of runs over for a week are purged (replay is for reconnecting clients).
select private.ensure_cron_job('aie_agent_run_events_purge', '17 3 * * *', 'select private.purge_agent_run_events()');
