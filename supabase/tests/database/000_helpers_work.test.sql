-- The shared helpers behave as PostgREST would: role and claims switch and switch back.
begin;
\ir ../_helpers.psql
select plan(7);

select tests.create_user('helper-alice@example.com');

select tests.authenticate_as(tests.user_id('helper-alice@example.com'));
select is(current_user::text, 'authenticated', 'authenticate_as switches to the authenticated role');
select is(auth.uid(), tests.user_id('helper-alice@example.com'), 'auth.uid() reads the sub claim');
select is(auth.role(), 'authenticated', 'auth.role() reads the role claim');

select tests.authenticate_as_anon();
select is(current_user::text, 'anon', 'authenticate_as_anon switches to anon');
select is(auth.uid(), null, 'anon has no auth.uid()');

select tests.authenticate_as_service_role();
select is(current_user::text, 'service_role', 'authenticate_as_service_role switches to service_role');

select tests.clear_authentication();
select is(current_user::text, 'postgres', 'clear_authentication returns to the connection role');

select * from finish();
rollback;
