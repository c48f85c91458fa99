-- Reverts 20261125170100_rate_limits.sql.
select private.drop_cron_job('aie_rate_limit_cleanup');
drop function private.rate_limit_hit(text, integer, integer, integer);
drop table private.rate_limit_buckets;
