-- The marketplace's scheduled jobs (pg_cron).

-- Analytics deltas of hires and ratings into employee_analytics, and active users refreshed.
select private.ensure_cron_job('aie_employee_analytics_fold', '* * * * *', 'select private.fold_employee_analytics()');
