-- list_chat_messages: keyset pages of 50 both ways over a session's thread (newest first, back with p_before, forward
-- with p_after, oldest first), no message skipped or repeated, ties on created_at broken by id; refuses a bad limit,
-- both cursors, and a cursor that is not a readable message of the session; user B reads an empty page of A's
-- session and cannot use A's message as a cursor; anon cannot call it.
begin;
\ir ../../_helpers.psql
\ir ../../_fixtures/marketplace.psql
\ir ../../_fixtures/chat.psql
select plan(13);

select tests.create_marketplace_fixtures();
select tests.create_employee('pgtap-chat-one');
select tests.create_chat_user('pgtap-chat-ann', 'pgtap-chat-one') as ann_hire \gset
select tests.create_chat_user('pgtap-chat-bob', 'pgtap-chat-one') as bob_hire \gset
select tests.user_id('pgtap-chat-ann@example.com') as ann \gset
select tests.user_id('pgtap-chat-bob@example.com') as bob \gset
select tests.start_session_as(:'ann', :'ann_hire') as s \gset

-- 120 messages; 20 of them share one created_at (ties).
insert into public.chat_messages (session_id, user_id, role, content, created_at)
select :'s', :'ann', 'user', 'message ' || g,
       case when g between 41 and 60 then timestamptz '2026-11-01 12:00' else timestamptz '2026-11-01' + g * interval '1 minute' end
  from generate_series(1, 120) g;
create temporary table thread as
  select id, row_number() over (order by created_at desc, id desc) as n from public.chat_messages where session_id = :'s';
grant select on thread to authenticated;

select tests.authenticate_as(:'ann');
select results_eq(format($$select id from public.list_chat_messages(%L)$$, :'s'),
  $$select id from thread where n <= 50 order by n$$, 'The first page is the newest 50, newest first');
select results_eq(format($$select id from public.list_chat_messages(%L, p_before => (select id from thread where n = 50))$$, :'s'),
  $$select id from thread where n between 51 and 100 order by n$$, 'p_before pages back, newest first, across the ties');
select results_eq(format($$select id from public.list_chat_messages(%L, p_before => (select id from thread where n = 100))$$, :'s'),
  $$select id from thread where n > 100 order by n$$, 'The last page back holds the rest');
select is_empty(format($$select id from public.list_chat_messages(%L, p_before => (select id from thread where n = 120))$$, :'s'),
  'Before the oldest there is nothing');
select results_eq(format($$select id from public.list_chat_messages(%L, p_after => (select id from thread where n = 120))$$, :'s'),
  $$select id from thread where n between 70 and 119 order by n desc$$, 'p_after pages forward, oldest first');
select results_eq(format($$select id from public.list_chat_messages(%L, p_after => (select id from thread where n = 70))$$, :'s'),
  $$select id from thread where n between 20 and 69 order by n desc$$, 'and on towards the newest');
select is((select count(*) from public.list_chat_messages(:'s', p_limit => 7))::int, 7, 'p_limit sets the page size');
select is(tests.api_error_code(format($$select * from public.list_chat_messages(%L, p_limit => 51)$$, :'s')),
  'invalid_limit 400', 'A page holds at most 50');
select is(tests.api_error_code(format($$select * from public.list_chat_messages(%L, (select id from thread where n = 1), (select id from thread where n = 2))$$, :'s')),
  'invalid_cursor 400', 'Not both directions at once');
select is(tests.api_error_code(format($$select * from public.list_chat_messages(%L, %L)$$, :'s', extensions.gen_random_uuid())),
  'message_not_found 404', 'A cursor must be a message of the session');
select tests.clear_authentication();

select tests.authenticate_as(:'bob');
select is_empty(format($$select * from public.list_chat_messages(%L)$$, :'s'), 'Another user reads an empty page of A''s session');
select is(tests.api_error_code(format($$select * from public.list_chat_messages(%L, (select id from thread where n = 5))$$, :'s')),
  'message_not_found 404', 'and cannot use A''s message as a cursor');
select tests.clear_authentication();

select tests.authenticate_as_anon();
select throws_ok(format($$select * from public.list_chat_messages(%L)$$, :'s'), '42501', null, 'anon cannot call it');
select tests.clear_authentication();

select * from finish();
rollback;
