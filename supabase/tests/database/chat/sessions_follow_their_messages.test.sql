-- The triggers of chat_messages: a session's message_count and last_message_at follow its messages (inserts, deletes,
-- a multi-row statement), an untitled session takes its title from its first user message, a user message stamps
-- the hire's last_used_at (active users), and the employee's total_messages (live analytics) always equals the
-- recomputation from the source rows, through message deletes, session deletes and a fold.
begin;
\ir ../../_helpers.psql
\ir ../../_fixtures/marketplace.psql
\ir ../../_fixtures/chat.psql
select plan(18);

select tests.create_marketplace_fixtures();
select tests.create_employee('pgtap-chat-one') as one_id \gset
select tests.create_chat_user('pgtap-chat-ann', 'pgtap-chat-one') as ann_hire \gset
select tests.user_id('pgtap-chat-ann@example.com') as ann \gset
select tests.start_session_as(:'ann', :'ann_hire') as s \gset
select tests.start_session_as(:'ann', :'ann_hire', 'Kept title') as titled \gset

create function pg_temp.messages_agree() returns boolean language sql as $$
  select (select total_messages from tests.analytics_of('pgtap-chat-one'))
       = (select r.total_messages from private.recompute_employee_analytics() r
           join public.ai_employees e on e.id = r.employee_id where e.slug = 'pgtap-chat-one')
$$;

select results_eq(format($$select message_count, title from public.chat_sessions where id = %L$$, :'s'),
  $$values (0, null::text)$$, 'A new session has no messages and no title');
select is((tests.hire_of(:'ann', 'pgtap-chat-one')).last_used_at, null, 'The hire is unused');

select tests.say_as(:'ann', :'s', E'  Plan   my\n launch  for a very long time indeed, with many words that go on and on past eighty characters  ') as q1 \gset
select results_eq(format($$select message_count, title from public.chat_sessions where id = %L$$, :'s'),
  $$values (1, 'Plan my launch for a very long time indeed, with many words that go on and on pa')$$,
  'The first user message counts and titles the session (80 characters, whitespace collapsed)');
select is((tests.session_of(:'s')).last_message_at, (select created_at from public.chat_messages where id = :'q1'),
  'last_message_at is the message''s time');
select is((tests.hire_of(:'ann', 'pgtap-chat-one')).last_used_at, (select created_at from public.chat_messages where id = :'q1'),
  'A user message stamps the hire''s last_used_at');
select tests.answer(:'s', 'Sure.', :'q1') as a1 \gset
select tests.say_as(:'ann', :'s', 'Second question', :'a1') as q2 \gset
select results_eq(format($$select message_count, title, last_message_at from public.chat_sessions where id = %L$$, :'s'),
  format($$select 3, 'Plan my launch for a very long time indeed, with many words that go on and on pa'::text, created_at from public.chat_messages where id = %L$$, :'q2'),
  'Each message counts, the title stays, last_message_at moves to the newest');
select tests.say_as(:'ann', :'titled', 'Hi');
select is((tests.session_of(:'titled')).title, 'Kept title', 'A session with a title keeps it');

-- A multi-row statement (the service writing a tool result and an answer in one).
insert into public.chat_messages (session_id, user_id, role, content, parent_id)
values (:'s', :'ann', 'tool', '42', :'q2'), (:'s', :'ann', 'assistant', 'The answer is 42', :'q2');
select is((tests.session_of(:'s')).message_count, 5, 'A multi-row insert counts every row');
select ok(pg_temp.messages_agree(), 'total_messages equals the recomputation');
select is((tests.analytics_of('pgtap-chat-one')).total_messages, 6::bigint, 'and counts every message of the employee');

-- Deleting the newest messages moves last_message_at back.
select tests.authenticate_as(:'ann');
delete from public.chat_messages where id = :'q2';  -- and the tool and assistant replies under it
select tests.clear_authentication();
select results_eq(format($$select message_count, last_message_at from public.chat_sessions where id = %L$$, :'s'),
  format($$select 2, created_at from public.chat_messages where id = %L$$, :'a1'),
  'A delete (with the replies under it) counts down and moves last_message_at back to the newest left');
select ok(pg_temp.messages_agree(), 'total_messages still equals the recomputation');

select tests.authenticate_as(:'ann');
delete from public.chat_messages where session_id = :'s';
select tests.clear_authentication();
select results_eq(format($$select message_count, last_message_at = created_at from public.chat_sessions where id = %L$$, :'s'),
  $$values (0, true)$$, 'With no messages left the session is back at 0, last_message_at its creation');

select tests.say_as(:'ann', :'s', 'Again');
select tests.authenticate_as(:'ann');
delete from public.chat_sessions where id = :'titled';
select tests.clear_authentication();
select ok(pg_temp.messages_agree(), 'A deleted session takes its messages off the total');
select is((tests.analytics_of('pgtap-chat-one')).total_messages, 1::bigint, 'which is now the one message left');

select cmp_ok(private.fold_employee_analytics(), '>', 0, 'The fold folds the message deltas');
select results_eq($$select total_messages, active_users_30d from public.employee_analytics a
                     join public.ai_employees e on e.id = a.employee_id where e.slug = 'pgtap-chat-one'$$,
  $$values (1::bigint, 1::bigint)$$, 'After the fold the row holds the messages, and the user is an active user');

-- Deleting the user takes everything with it, and the numbers still agree.
delete from auth.users where id = :'ann';
select ok(pg_temp.messages_agree(), 'Deleting the user (hire, sessions, messages in one cascade) keeps the total exact');

select * from finish();
rollback;
