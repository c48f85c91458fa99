-- Schema guards of the identity schema (supabase/schemas/10_identity): public.users, user_profiles and user_settings
-- with exactly their columns, keyed by the user and cascading from auth.users; the plan defaults; the indexes that
-- make a Stripe id belong to at most one user; the triggers that keep the rows in step with auth.users (security
-- definer) and stamp updated_at.
begin;
\ir ../_helpers.psql
select plan(34);

-- ------------------------------------------------------------------------------ identity: tables
select has_table('public', 'users', 'public.users exists');
select has_table('public', 'user_profiles', 'public.user_profiles exists');
select has_table('public', 'user_settings', 'public.user_settings exists');

select columns_are('public', 'users', array[
  'id', 'email', 'plan', 'plan_status', 'stripe_customer_id', 'stripe_subscription_id',
  'created_at', 'updated_at'
], 'public.users has exactly the expected columns');
select columns_are('public', 'user_profiles', array[
  'user_id', 'display_name', 'avatar_url', 'bio', 'company', 'job_title', 'created_at', 'updated_at'
], 'public.user_profiles has exactly the expected columns');
select columns_are('public', 'user_settings', array[
  'user_id', 'theme', 'locale', 'timezone', 'email_notifications', 'marketing_emails', 'usage_alerts',
  'created_at', 'updated_at'
], 'public.user_settings has exactly the expected columns');

select col_is_pk('public', 'users', 'id', 'public.users is keyed by id');
select col_is_pk('public', 'user_profiles', 'user_id', 'public.user_profiles is keyed by user_id');
select col_is_pk('public', 'user_settings', 'user_id', 'public.user_settings is keyed by user_id');

select fk_ok('public', 'users', 'id', 'auth', 'users', 'id',
  'public.users.id references auth.users.id');
select fk_ok('public', 'user_profiles', 'user_id', 'public', 'users', 'id',
  'public.user_profiles.user_id references public.users.id');
select fk_ok('public', 'user_settings', 'user_id', 'public', 'users', 'id',
  'public.user_settings.user_id references public.users.id');

select is(
  (select array_agg(format('%s.%s', c.conrelid::regclass, c.confdeltype) order by c.conrelid::regclass::text)
     from pg_constraint c
    where c.contype = 'f'
      and c.confrelid in ('auth.users'::regclass, 'public.users'::regclass)
      and c.conrelid in ('public.users'::regclass, 'public.user_profiles'::regclass,
                         'public.user_settings'::regclass)),
  array['user_profiles.c', 'user_settings.c', 'users.c'],
  'Every identity foreign key to a user cascades on delete'
);

select col_not_null('public', 'users', 'plan', 'public.users.plan is not null');
select col_default_is('public', 'users', 'plan', 'free', 'public.users.plan defaults to free');
select col_not_null('public', 'users', 'plan_status', 'public.users.plan_status is not null');
select col_default_is('public', 'users', 'plan_status', 'active', 'public.users.plan_status defaults to active');
select col_type_is('public', 'users', 'updated_at', 'timestamp with time zone',
  'public.users.updated_at is a timestamptz');

-- ----------------------------------------------------------------------------- identity: indexes
-- Name-agnostic: any valid, non-partial index led by the column counts, unique-constraint ones included.
select ok(
  exists(select 1 from pg_index i
          where i.indrelid = 'public.users'::regclass and i.indisvalid and i.indpred is null
            and i.indkey[0] = (select attnum from pg_attribute
                                where attrelid = 'public.users'::regclass and attname = 'email')),
  'public.users(email) has an index'
);
select ok(
  exists(select 1 from pg_index i
          where i.indrelid = 'public.users'::regclass and i.indisvalid and i.indpred is null
            and i.indkey[0] = (select attnum from pg_attribute
                                where attrelid = 'public.users'::regclass and attname = 'stripe_customer_id')),
  'public.users(stripe_customer_id) has an index'
);
select ok(
  exists(select 1 from pg_index i
          where i.indrelid = 'public.users'::regclass and i.indisvalid and i.indpred is null
            and i.indkey[0] = (select attnum from pg_attribute
                                where attrelid = 'public.users'::regclass and attname = 'stripe_subscription_id')),
  'public.users(stripe_subscription_id) has an index'
);
select ok(
  exists(select 1 from pg_index i
          where i.indrelid = 'public.users'::regclass and i.indisunique and i.indpred is null
            and i.indnatts = 1
            and i.indkey[0] = (select attnum from pg_attribute
                                where attrelid = 'public.users'::regclass and attname = 'stripe_customer_id')),
  'A Stripe customer id belongs to at most one user (unique index on stripe_customer_id alone)'
);
select ok(
  exists(select 1 from pg_index i
          where i.indrelid = 'public.users'::regclass and i.indisunique and i.indpred is null
            and i.indnatts = 1
            and i.indkey[0] = (select attnum from pg_attribute
                                where attrelid = 'public.users'::regclass and attname = 'stripe_subscription_id')),
  'A Stripe subscription id belongs to at most one user (unique index on stripe_subscription_id alone)'
);

-- ---------------------------------------------------------------------------- identity: triggers
select has_trigger('auth', 'users', '_500_create_identity', 'auth.users has the _500_create_identity trigger');
select trigger_is('auth', 'users', '_500_create_identity', 'private', 'tg_auth_users__create_identity',
  '_500_create_identity calls private.tg_auth_users__create_identity()');
select matches(
  (select pg_get_triggerdef(t.oid) from pg_trigger t
    where t.tgrelid = 'auth.users'::regclass and t.tgname = '_500_create_identity'),
  'AFTER INSERT ON auth\.users FOR EACH ROW',
  '_500_create_identity fires after insert, for each row'
);

select has_trigger('auth', 'users', '_500_sync_email', 'auth.users has the _500_sync_email trigger');
select trigger_is('auth', 'users', '_500_sync_email', 'private', 'tg_auth_users__sync_email',
  '_500_sync_email calls private.tg_auth_users__sync_email()');
select matches(
  (select pg_get_triggerdef(t.oid) from pg_trigger t
    where t.tgrelid = 'auth.users'::regclass and t.tgname = '_500_sync_email'),
  'AFTER UPDATE OF email ON auth\.users FOR EACH ROW',
  '_500_sync_email fires after an update of email, for each row'
);

select is_definer('private', 'tg_auth_users__create_identity', '{}'::name[],
  'The identity-creating trigger function is security definer (Auth inserts as its own role)');
select is_definer('private', 'tg_auth_users__sync_email', '{}'::name[],
  'The email-syncing trigger function is security definer (Auth updates as its own role)');

select trigger_is('public', 'users', '_100_timestamps', 'private', 'tg__set_updated_at',
  'public.users stamps updated_at with private.tg__set_updated_at()');
select trigger_is('public', 'user_profiles', '_100_timestamps', 'private', 'tg__set_updated_at',
  'public.user_profiles stamps updated_at with private.tg__set_updated_at()');
select trigger_is('public', 'user_settings', '_100_timestamps', 'private', 'tg__set_updated_at',
  'public.user_settings stamps updated_at with private.tg__set_updated_at()');

select * from finish();
rollback;
