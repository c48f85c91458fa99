-- Extensions beyond the platform's own (uuid-ossp, pgcrypto, pg_stat_statements come with every project).
-- pg_cron in pg_catalog, as Supabase installs it; its objects live in schema cron.
create extension if not exists pg_cron with schema pg_catalog;
grant usage on schema cron to postgres;

-- btree_gist: exclusion constraints over (provider, model, period) keep price periods from overlapping.
create extension if not exists btree_gist with schema extensions;

-- btree_gin: GIN indexes keyed by a uuid too (chat search over one's own messages: owner and words in one index).
create extension if not exists btree_gin with schema extensions;
