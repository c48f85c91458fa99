-- search_chat_messages: full-text search over the caller's own messages (every role), newest first, optionally in
-- one session, with a snippet; web-search syntax; user B finds nothing of A's even searching A's session; refuses an
-- empty or over-long query and a bad limit; anon cannot call it. The index is the owner-and-words GIN.
begin;
\ir ../../_helpers.psql
\ir ../../_fixtures/marketplace.psql
\ir ../../_fixtures/chat.psql
select plan(14);

select tests.create_marketplace_fixtures();
select tests.create_employee('pgtap-chat-one');
select tests.create_chat_user('pgtap-chat-ann', 'pgtap-chat-one') as ann_hire \gset
select tests.create_chat_user('pgtap-chat-bob', 'pgtap-chat-one') as bob_hire \gset
select tests.user_id('pgtap-chat-ann@example.com') as ann \gset
select tests.user_id('pgtap-chat-bob@example.com') as bob \gset
select tests.start_session_as(:'ann', :'ann_hire') as s1 \gset
select tests.start_session_as(:'ann', :'ann_hire') as s2 \gset
select tests.start_session_as(:'bob', :'bob_hire') as b1 \gset

select tests.say_as(:'ann', :'s1', 'Draft the quarterly budget for Zanzibar') as m1 \gset
select tests.answer(:'s1', 'Here is the Zanzibar budget draft, by quarter') as m2 \gset
select tests.say_as(:'ann', :'s2', 'Zanzibar travel plans, not money') as m3 \gset
select tests.say_as(:'bob', :'b1', 'Bob also writes about Zanzibar budget') as m4 \gset

select tests.authenticate_as(:'ann');
select results_eq($$select message_id from public.search_chat_messages('zanzibar')$$,
  array[:'m3', :'m2', :'m1']::uuid[], 'A user finds their own messages of every role, newest first, case-insensitive');
select results_eq($$select message_id from public.search_chat_messages('zanzibar budget')$$,
  array[:'m2', :'m1']::uuid[], 'All words must match');
select results_eq($$select message_id from public.search_chat_messages('zanzibar -budget')$$,
  array[:'m3']::uuid[], 'A word can be excluded');
select results_eq($$select message_id from public.search_chat_messages('"quarterly budget"')$$,
  array[:'m1']::uuid[], 'A quoted phrase matches as a phrase');
select results_eq(format($$select message_id from public.search_chat_messages('zanzibar', %L)$$, :'s2'),
  array[:'m3']::uuid[], 'The search can be kept to one session');
select is((select snippet from public.search_chat_messages('quarterly')), 'Draft the <<quarterly>> budget for Zanzibar',
  'A hit carries a snippet with the match marked');
select is((select count(*) from public.search_chat_messages('zanzibar', p_limit => 1))::int, 1, 'p_limit caps the hits');
select is(tests.api_error_code($$select * from public.search_chat_messages('   ')$$), 'invalid_query 400',
  'An empty query is refused');
select is(tests.api_error_code($$select * from public.search_chat_messages(repeat('a', 201))$$), 'invalid_query 400',
  'So is one over 200 characters');
select is(tests.api_error_code($$select * from public.search_chat_messages('x', p_limit => 0)$$), 'invalid_limit 400',
  'And a limit outside 1-50');
select tests.clear_authentication();

select tests.authenticate_as(:'bob');
select results_eq($$select message_id from public.search_chat_messages('zanzibar')$$, array[:'m4']::uuid[],
  'Another user finds only their own message');
select is_empty(format($$select * from public.search_chat_messages('zanzibar', %L)$$, :'s1'),
  'and nothing in A''s session');
select tests.clear_authentication();

select tests.authenticate_as_anon();
select throws_ok($$select * from public.search_chat_messages('zanzibar')$$, '42501', null, 'anon cannot search');
select tests.clear_authentication();

-- The search's condition matches the GIN index expression: with the scans that ignore it priced out, and the thread
-- index (which a tiny, unanalyzed table may prefer for the owner alone) dropped for this rolled-back transaction,
-- the plan reads it.
create function pg_temp.plan_of(p_sql text) returns text language plpgsql as $$
declare r record; v text := '';
begin
  for r in execute 'explain ' || p_sql loop v := v || r."QUERY PLAN" || E'\n'; end loop;
  return v;
end $$;
drop index public.chat_messages_session_created_idx;
set local enable_seqscan = off;
set local enable_indexscan = off;
select matches(pg_temp.plan_of(format($$select m.id from public.chat_messages m where m.user_id = %L
                                        and to_tsvector('simple', m.content) @@ websearch_to_tsquery('simple', 'zanzibar')$$, :'ann')),
  'Bitmap Index Scan on chat_messages_search_idx', 'The search reads chat_messages_search_idx (owner and words)');
reset enable_seqscan;
reset enable_indexscan;

select * from finish();
rollback;
