-- Chat messages under RLS: a user writes only user messages, only in their own sessions (the composite foreign key
-- keeps the owner the session's); never an assistant or tool message, never a model column; changes none; deletes
-- their own (and the replies under it); user B sees, writes into and deletes nothing of A's; a parent is in the same
-- session. anon nothing. The service writes assistant and tool messages.
begin;
\ir ../../_helpers.psql
\ir ../../_fixtures/marketplace.psql
\ir ../../_fixtures/chat.psql
select plan(25);

select tests.create_marketplace_fixtures();
select tests.create_employee('pgtap-chat-one');
select tests.create_chat_user('pgtap-chat-ann', 'pgtap-chat-one') as ann_hire \gset
select tests.create_chat_user('pgtap-chat-bob', 'pgtap-chat-one') as bob_hire \gset
select tests.user_id('pgtap-chat-ann@example.com') as ann \gset
select tests.user_id('pgtap-chat-bob@example.com') as bob \gset
select tests.start_session_as(:'ann', :'ann_hire') as ann_session \gset
select tests.start_session_as(:'ann', :'ann_hire') as ann_other_session \gset
select tests.start_session_as(:'bob', :'bob_hire') as bob_session \gset

select tests.say_as(:'ann', :'ann_session', 'Hello there') as q1 \gset
select results_eq(format($$select role, status, model is null and provider is null and run_id is null from public.chat_messages where id = %L$$, :'q1'),
  $$values ('user'::text, 'complete'::text, true)$$, 'A user''s message is a complete user message with no model columns');
select tests.answer(:'ann_session', 'Hi, Ann', :'q1') as a1 \gset
select isnt(:'a1'::uuid, null, 'The service writes the assistant''s answer');
select lives_ok(format($$select tests.answer(%L, 'a tool result')$$, :'ann_session'), 'The service writes any role');

select tests.authenticate_as(:'ann');
select is((select count(*) from public.chat_messages)::int, 3, 'A user reads their own messages');
select throws_ok(format($$insert into public.chat_messages (session_id, user_id, role, content) values (%L, %L, 'assistant', 'I am the AI')$$, :'ann_session', :'ann'),
  '42501', null, 'They cannot write an assistant message');
select throws_ok(format($$insert into public.chat_messages (session_id, user_id, role, content) values (%L, %L, 'tool', '{}')$$, :'ann_session', :'ann'),
  '42501', null, 'Nor a tool message');
select throws_ok(format($$insert into public.chat_messages (session_id, user_id, content, model) values (%L, %L, 'x', 'gpt')$$, :'ann_session', :'ann'),
  '42501', null, 'Nor set a model column');
select throws_ok(format($$insert into public.chat_messages (session_id, user_id, content, status) values (%L, %L, 'x', 'streaming')$$, :'ann_session', :'ann'),
  '42501', null, 'Nor a status');
select throws_ok(format($$insert into public.chat_messages (session_id, user_id, content) values (%L, %L, 'x')$$, :'bob_session', :'ann'),
  '23503', null, 'They cannot write into another user''s session in their own name (composite foreign key)');
select throws_ok(format($$insert into public.chat_messages (session_id, user_id, content) values (%L, %L, 'x')$$, :'bob_session', :'bob'),
  '42501', null, 'Nor in the other user''s name');
select throws_ok(format($$insert into public.chat_messages (session_id, user_id, content, parent_id) values (%L, %L, 'x', %L)$$, :'ann_other_session', :'ann', :'q1'),
  '23503', null, 'A parent is a message of the same session');
select throws_ok(format($$insert into public.chat_messages (session_id, user_id, content) values (%L, %L, repeat('x', 100001))$$, :'ann_session', :'ann'),
  '23514', null, 'A message is at most 100 000 characters');
select throws_ok(format($$update public.chat_messages set content = 'edited' where id = %L$$, :'q1'),
  '42501', null, 'They cannot change a message (editing makes a branch)');
select tests.clear_authentication();

select throws_ok(format($$insert into public.chat_messages (session_id, user_id, content) values (%L, %L, 'x')$$, :'ann_session', :'bob'),
  '23503', null, 'Even the service cannot write a message whose owner is not the session''s');
select throws_ok(format($$insert into public.chat_messages (session_id, user_id, role, status, content) values (%L, %L, 'user', 'streaming', 'x')$$, :'ann_session', :'ann'),
  '23514', null, 'A user message is always complete');
select throws_ok(format($$insert into public.chat_messages (session_id, user_id, role, content, error_code) values (%L, %L, 'assistant', 'x', 'provider_failed')$$, :'ann_session', :'ann'),
  '23514', null, 'An error code only on a failed or cancelled message');

select tests.authenticate_as(:'bob');
select is_empty($$select * from public.chat_messages$$, 'Another user sees none of A''s messages');
select is(tests.affected_rows(format($$delete from public.chat_messages where id = %L$$, :'q1')),
  0, 'Their delete of A''s message touches nothing');
select is(tests.affected_rows(format($$delete from public.chat_messages where session_id = %L$$, :'ann_session')),
  0, 'Nor does a delete by session');
select tests.clear_authentication();

select tests.authenticate_as_anon();
select throws_ok($$select * from public.chat_messages$$, '42501', null, 'anon cannot read messages');
select throws_ok(format($$insert into public.chat_messages (session_id, user_id, content) values (%L, %L, 'x')$$, :'ann_session', :'ann'),
  '42501', null, 'anon cannot write one');
select tests.clear_authentication();

select tests.authenticate_as(:'ann');
select is(tests.affected_rows(format($$delete from public.chat_messages where id = %L$$, :'q1')),
  1, 'A user deletes their own message');
select is((select count(*) from public.chat_messages where id in (:'q1', :'a1'))::int, 0,
  'The replies under it go with it');
select tests.clear_authentication();

select tests.authenticate_as(:'ann');
select is(tests.affected_rows(format($$delete from public.chat_sessions where id = %L$$, :'ann_session')), 1,
  'Deleting a session');
select tests.clear_authentication();
select is((select count(*) from public.chat_messages where session_id = :'ann_session')::int, 0,
  'deletes its messages');

select * from finish();
rollback;
