-- Chat sessions under RLS, as supabase-js reaches them: a user starts a session only with their own hire, reads,
-- renames, pins, archives and deletes only their own; sets none of the database's columns (counters, employee);
-- user B sees and changes nothing of A's. anon reads and writes nothing.
begin;
\ir ../../_helpers.psql
\ir ../../_fixtures/marketplace.psql
\ir ../../_fixtures/chat.psql
select plan(22);

select tests.create_marketplace_fixtures();
select tests.create_employee('pgtap-chat-one') as one_id \gset
select tests.create_chat_user('pgtap-chat-ann', 'pgtap-chat-one') as ann_hire \gset
select tests.create_chat_user('pgtap-chat-bob', 'pgtap-chat-one') as bob_hire \gset
select tests.user_id('pgtap-chat-ann@example.com') as ann \gset
select tests.user_id('pgtap-chat-bob@example.com') as bob \gset
select tests.start_session_as(:'ann', :'ann_hire', 'Ann''s plan') as ann_session \gset

select is((tests.session_of(:'ann_session')).employee_id, :'one_id'::uuid,
  'A session takes its employee from the hire');

select tests.authenticate_as(:'ann');
select results_eq($$select id from public.chat_sessions$$, array[:'ann_session']::uuid[],
  'A user reads exactly their own sessions');
select is(tests.affected_rows(format($$update public.chat_sessions set title = 'Renamed' where id = %L$$, :'ann_session')),
  1, 'They rename it');
select is(tests.affected_rows(format($$update public.chat_sessions set is_pinned = true, is_archived = true where id = %L$$, :'ann_session')),
  1, 'They pin and archive it');
select results_eq(format($$select title, is_pinned, is_archived from public.chat_sessions where id = %L$$, :'ann_session'),
  $$values ('Renamed', true, true)$$, 'They read back the title, pin and archive flag');
select throws_ok(format($$update public.chat_sessions set title = repeat('x', 201) where id = %L$$, :'ann_session'),
  '23514', null, 'A title is at most 200 characters');
select throws_ok(format($$update public.chat_sessions set message_count = 99 where id = %L$$, :'ann_session'),
  '42501', null, 'They cannot set the message count');
select throws_ok(format($$update public.chat_sessions set last_message_at = now() + interval '1 year' where id = %L$$, :'ann_session'),
  '42501', null, 'They cannot set last_message_at');
select throws_ok(format($$update public.chat_sessions set employee_id = %L where id = %L$$, :'one_id', :'ann_session'),
  '42501', null, 'They cannot set the employee');
select throws_ok(format($$update public.chat_sessions set user_id = %L where id = %L$$, :'bob', :'ann_session'),
  '42501', null, 'They cannot give the session to another user');
select throws_ok(format($$update public.chat_sessions set hire_id = %L where id = %L$$, :'bob_hire', :'ann_session'),
  '42501', null, 'They cannot move it to another hire');
select throws_ok(format($$insert into public.chat_sessions (user_id, hire_id) values (%L, %L)$$, :'ann', :'bob_hire'),
  '23503', null, 'They cannot start a session with another user''s hire (composite foreign key)');
select throws_ok(format($$insert into public.chat_sessions (user_id, hire_id) values (%L, %L)$$, :'bob', :'bob_hire'),
  '42501', null, 'They cannot start a session in another user''s name');
select throws_ok(format($$insert into public.chat_sessions (user_id, hire_id, message_count) values (%L, %L, 5)$$, :'ann', :'ann_hire'),
  '42501', null, 'They cannot insert counters');
select tests.clear_authentication();

select tests.authenticate_as(:'bob');
select is_empty($$select * from public.chat_sessions$$, 'Another user sees none of them');
select is(tests.affected_rows(format($$update public.chat_sessions set title = 'Mine now' where id = %L$$, :'ann_session')),
  0, 'Their rename of A''s session touches nothing');
select is(tests.affected_rows(format($$delete from public.chat_sessions where id = %L$$, :'ann_session')),
  0, 'Their delete of A''s session touches nothing');
select tests.clear_authentication();
select is((tests.session_of(:'ann_session')).title, 'Renamed', 'A''s session is unchanged');

select tests.authenticate_as_anon();
select throws_ok($$select * from public.chat_sessions$$, '42501', null, 'anon cannot read sessions');
select throws_ok(format($$insert into public.chat_sessions (user_id, hire_id) values (%L, %L)$$, :'ann', :'ann_hire'),
  '42501', null, 'anon cannot start one');
select tests.clear_authentication();

select tests.authenticate_as(:'ann');
select is(tests.affected_rows(format($$delete from public.chat_sessions where id = %L$$, :'ann_session')),
  1, 'A user deletes their own session');
select tests.clear_authentication();
select ok(tests.session_of(:'ann_session') is null, 'It is gone');

select * from finish();
rollback;
