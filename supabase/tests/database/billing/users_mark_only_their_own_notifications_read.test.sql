-- A signed-in user marks their own notifications read and unread again (read_at, the one column they may update)
-- and no one else's: an update of another user's notification, or an unfiltered one, touches only their own.
begin;
\ir ../../_helpers.psql
\ir ../../_fixtures/billing.psql
select plan(7);

select * from tests.create_billing_accounts() \gset

select tests.authenticate_as(:'alice_id');

-- ============================================================= alice marks notifications read
select is(tests.affected_rows(format('update public.notifications set read_at = now() where id = %L', :'alice_notification_id')),
  1, 'alice can set read_at on her own notification');
select isnt((select read_at from public.notifications where id = :'alice_notification_id'), null,
  'alice reads back read_at on her notification');
select is(tests.affected_rows(format('update public.notifications set read_at = now() where id = %L', :'bob_notification_id')),
  0, 'alice''s update of read_at on bob''s notification affects no rows');
select is(tests.affected_rows('update public.notifications set read_at = now()'), 2,
  'alice''s unfiltered read_at update touches only her own two notifications');
select is(tests.affected_rows(format('update public.notifications set read_at = null where id = %L', :'alice_notification_id')),
  1, 'alice can mark her own notification unread again');

-- ============================================================================ nothing leaked
select tests.clear_authentication();
select is((select read_at from public.notifications where id = :'bob_notification_id'), null,
  'bob''s notification is still unread after alice''s attempts');

-- ========================================================================================= bob
select tests.authenticate_as(:'bob_id');
select is(tests.affected_rows(format('update public.notifications set read_at = now() where id = %L', :'alice_notification_id')),
  0, 'bob''s update of read_at on alice''s notification affects no rows');
select tests.clear_authentication();

select * from finish();
rollback;
