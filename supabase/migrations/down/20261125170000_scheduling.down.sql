-- Reverts 20261125170000_scheduling.sql.
drop function private.drop_cron_job(text);
drop function private.ensure_cron_job(text, text, text);
drop extension pg_cron;
