-- agent_thread, the window the model is shown: the path that ends at a message, through parent_id, newest first with
-- its depth; messages of other branches (an edit, a regeneration) and of other sessions are not in it; it stops after
-- p_max_messages messages; failed answers without text and tool messages are walked through but not shown.
begin;
\ir ../../_helpers.psql
\ir ../../_fixtures/marketplace.psql
\ir ../../_fixtures/chat.psql
\ir ../../_fixtures/agents.psql
select plan(7);

select tests.create_marketplace_fixtures();
select tests.create_employee('pgtap-agents-thread');
select tests.create_chat_user('pgtap-agents-ann', 'pgtap-agents-thread') as hire \gset
select tests.user_id('pgtap-agents-ann@example.com') as ann \gset
select tests.start_session_as(:'ann', :'hire') as session \gset
select tests.start_session_as(:'ann', :'hire') as other_session \gset

-- q1 → a1 → q2 → a2, and a branch at a1: q2b → (tool) → (failed, empty) → a2b.
select tests.say_as(:'ann', :'session', 'Q1') as q1 \gset
select tests.answer(:'session', 'A1', :'q1') as a1 \gset
select tests.say_as(:'ann', :'session', 'Q2', :'a1') as q2 \gset
select tests.answer(:'session', 'A2', :'q2') as a2 \gset
select tests.say_as(:'ann', :'session', 'Q2 edited', :'a1') as q2b \gset
insert into public.chat_messages (session_id, user_id, role, content, parent_id)
values (:'session', :'ann', 'tool', '{"result": 42}', :'q2b') returning id as tool \gset
insert into public.chat_messages (session_id, user_id, role, content, parent_id, status, error_code)
values (:'session', :'ann', 'assistant', '', :'tool', 'failed', 'provider_error') returning id as failed \gset
select tests.answer(:'session', 'A2 edited', :'failed') as a2b \gset
select tests.say_as(:'ann', :'other_session', 'Elsewhere') as elsewhere \gset

select tests.authenticate_as_service_role();
select results_eq(format($$select id, role, content, depth from private.agent_thread(%L, 50)$$, :'a2'),
  format($$values (%L::uuid, 'assistant'::text, 'A2'::text, 0), (%L, 'user', 'Q2', 1), (%L, 'assistant', 'A1', 2), (%L, 'user', 'Q1', 3)$$, :'a2', :'q2', :'a1', :'q1'),
  'The thread ending at A2 is its path, newest first, with each message''s depth');
select results_eq(format($$select id, depth from private.agent_thread(%L, 50)$$, :'a2b'),
  format($$values (%L::uuid, 0), (%L, 3), (%L, 4), (%L, 5)$$, :'a2b', :'q2b', :'a1', :'q1'),
  'The thread ending at the other branch has its own messages, not Q2 or A2; the tool message and the failed empty answer are walked through, not shown');
select results_eq(format($$select content from private.agent_thread(%L, 50)$$, :'q2b'),
  $$values ('Q2 edited'::text), ('A1'), ('Q1')$$, 'A thread may end at a user message (what a new run answers)');
select results_eq(format($$select id from private.agent_thread(%L, 2)$$, :'a2'),
  format($$values (%L::uuid), (%L)$$, :'a2', :'q2'), 'At most p_max_messages messages: the newest ones');
select results_eq(format($$select id from private.agent_thread(%L, 4)$$, :'a2b'),
  format($$values (%L::uuid), (%L)$$, :'a2b', :'q2b'), 'The bound counts the messages walked through (the tool message and the failed answer)');
select results_eq(format($$select id from private.agent_thread(%L, 50)$$, :'elsewhere'),
  format($$values (%L::uuid)$$, :'elsewhere'), 'Another session''s thread has none of this one''s messages');
select is_empty(format($$select 1 from private.agent_thread(%L, 50)$$, extensions.gen_random_uuid()),
  'A message that does not exist has no thread');
select tests.clear_authentication();

select * from finish();
rollback;
