-- The purge (purge_agent_run_events, run daily by aie_agent_run_events_purge): the streamed events of a run that
-- ended more than a week ago are deleted, the run, its steps and its messages kept; events of a run that ended
-- recently, and of a run still in progress, stay.
begin;
\ir ../../_helpers.psql
\ir ../../_fixtures/marketplace.psql
\ir ../../_fixtures/chat.psql
\ir ../../_fixtures/agents.psql
select plan(5);

select tests.create_marketplace_fixtures();
select tests.create_employee('pgtap-agents-purge');
select tests.create_chat_user('pgtap-agents-ann', 'pgtap-agents-purge') as hire \gset
select tests.user_id('pgtap-agents-ann@example.com') as ann \gset

select tests.run_in_progress(:'ann', :'hire') as old_run \gset
select private.append_agent_run_events(:'old_run', '[{"sequence_number": 1, "type": "run.created", "data": {}}]');
select private.finish_agent_run(:'old_run', 'completed', null, null, null, '{"content": "Old"}') is not null as f1 \gset
update public.agent_runs set ended_at = now() - interval '8 days' where id = :'old_run';

select tests.run_in_progress(:'ann', :'hire') as recent_run \gset
select private.append_agent_run_events(:'recent_run', '[{"sequence_number": 1, "type": "run.created", "data": {}}]');
select private.finish_agent_run(:'recent_run', 'completed', null, null, null, '{"content": "Recent"}') is not null as f2 \gset
update public.agent_runs set ended_at = now() - interval '6 days' where id = :'recent_run';

select tests.run_in_progress(:'ann', :'hire') as live_run \gset
select private.append_agent_run_events(:'live_run', '[{"sequence_number": 1, "type": "run.created", "data": {}}]');

select cmp_ok(private.purge_agent_run_events(), '>=', 1, 'The purge deletes the old run''s events');
select is_empty(format($$select 1 from public.agent_run_events where run_id = %L$$, :'old_run'),
  'A run that ended over a week ago has no events left');
select isnt_empty(format($$select 1 from public.chat_messages m join public.agent_runs r on r.assistant_message_id = m.id
                           where r.id = %L$$, :'old_run'), 'Its run and its answer are kept');
select isnt_empty(format($$select 1 from public.agent_run_events where run_id = %L$$, :'recent_run'),
  'A run that ended six days ago keeps its events');
select isnt_empty(format($$select 1 from public.agent_run_events where run_id = %L$$, :'live_run'),
  'A run in progress keeps its events');

select * from finish();
rollback;
