// bench:db's chat part at small scale, against the stack's database (DB_URL): the bulk load (scripts/bench/db/
// chat-data.ts, its triggers off) ends exactly where the real roll-up trigger ends on the same messages; the chat
// operations (chat-operations.ts), run as PostgREST runs them, read the right rows for the owner and none for another
// user; and the seed's nested-policy design (chat-seed-design.ts, applied in a rolled-back transaction) reads the same
// rows. The test makes its own employee and users and removes them.
import assert from "node:assert/strict";
import postgres from "npm:postgres@3.4.9";
import { CHAT_TITLES, generateChat } from "../bench/db/chat-data.ts";
import { chatOperations, type ChatSample, FULL_PAGE, sampleChat } from "../bench/db/chat-operations.ts";
import { CHAT_SEED_DESIGN_SQL } from "../bench/db/chat-seed-design.ts";
import { type Call, type Operation, runAsUser } from "../bench/db/operations.ts";
import { authenticatorUrl } from "../bench/db/stack.ts";

const DB_URL = Deno.env.get("DB_URL") ?? "postgresql://postgres:postgres@127.0.0.1:54322/postgres";
const options = { onnotice: () => {}, connection: { application_name: "bench_chat_test" } };

type Message = { id: string; created_at: string; session_id?: string };
type Session = { id: string; last_message_at: string };
const step = async (_what: string, run: () => Promise<unknown>) => void await run();

/** An employee and users (Pro plan, two hires each) of the test's own. */
async function fixture(sql: postgres.Sql, users: number) {
  const run = crypto.randomUUID().slice(0, 8);
  const employees: string[] = [];
  for (const n of [1, 2]) {
    const [e] = await sql`
      insert into public.ai_employees (slug, name, role, category, department, level, status, short_description,
                                       provider, model, system_prompt)
      values (${`chat-bench-test-${run}-${n}`}, ${`Chat bench test ${run} ${n}`}, 'Test role', 'sales', 'Sales', 'mid',
              'available', 'A test employee', 'openai', 'gpt-4o-mini', 'Test prompt')
      returning id`;
    employees.push(e.id);
  }
  const ids = (await sql`
    insert into auth.users (id, aud, role, email, email_confirmed_at, raw_app_meta_data, raw_user_meta_data)
    select gen_random_uuid(), 'authenticated', 'authenticated', 'chat-bench-test-' || ${run} || '-' || i || '@example.com',
           now(), '{"provider":"email"}', '{}'
      from generate_series(1, ${users}) i
    returning id`).map((r) => r.id as string);
  await sql`update public.users set plan = 'pro' where id = any(${ids}::uuid[])`;
  await sql`insert into public.purchased_employees (user_id, employee_id)
            select u, e from unnest(${ids}::uuid[]) u, unnest(${employees}::uuid[]) e`;
  return {
    users: ids,
    employees,
    async tearDown() {
      await sql`delete from auth.users where id = any(${ids}::uuid[])`;
      await sql`delete from public.ai_employees where id = any(${employees}::uuid[])`;
    },
  };
}

const totals = async (sql: postgres.Sql, employees: string[]) => {
  await sql`select private.fold_employee_analytics()`;
  return Object.fromEntries(
    (await sql`select employee_id, total_messages from public.employee_analytics
                where employee_id = any(${employees}::uuid[])`).map((
      r,
    ) => [r.employee_id, Number(r.total_messages)]),
  );
};

Deno.test("the bulk chat load ends as the roll-up trigger ends on the same messages", async () => {
  const sql = postgres(DB_URL, { max: 4, ...options });
  const f = await fixture(sql, 3);
  try {
    const before = await totals(sql, f.employees);
    const made = await generateChat(sql, { sessions: 30, messages: 900 }, f.users, step);
    assert.deepEqual(made, { sessions: 30, messages: 900 });
    const afterBulk = await totals(sql, f.employees);
    const bulkUse = await sql`select id, last_used_at from public.purchased_employees
                               where user_id = any(${f.users}::uuid[]) order by id`;
    const [titled] =
      await sql`select count(*) filter (where title <> all(${CHAT_TITLES}::text[]))::int as derived,
                                      count(*) filter (where title = any(${CHAT_TITLES}::text[]))::int as users
                                 from public.chat_sessions where user_id = any(${f.users}::uuid[])`;
    assert.ok(
      titled.derived > 0 && titled.users > 0,
      "some sessions titled by the user, some from their first message",
    );

    // The same sessions (untitled where the bulk's were titled by the shortcut) and messages, written with the
    // triggers and foreign keys on, in one statement as the shortcut's counters are.
    await sql`update public.purchased_employees set last_used_at = null where user_id = any(${f.users}::uuid[])`;
    await sql.begin(async (tx) => {
      await tx`
        create temp table twin on commit drop as
        select s.id, gen_random_uuid() as twin_id, s.user_id, s.hire_id, s.created_at,
               case when s.title = any(${CHAT_TITLES}::text[]) then s.title end as title
          from public.chat_sessions s where s.user_id = any(${f.users}::uuid[])`;
      await tx`insert into public.chat_sessions (id, user_id, hire_id, title, created_at, last_message_at)
               select twin_id, user_id, hire_id, title, created_at, created_at from twin`;
      await tx`
        insert into public.chat_messages (id, session_id, user_id, role, content, parts, parent_id, status,
                                          error_code, created_at)
        select md5(m.id::text || 'twin')::uuid, t.twin_id, m.user_id, m.role, m.content, m.parts,
               md5(m.parent_id::text || 'twin')::uuid, m.status, m.error_code, m.created_at
          from public.chat_messages m join twin t on t.id = m.session_id
         order by m.created_at`;
      const pairs = await tx`
        select s.message_count, s.last_message_at, s.title, w.message_count as twin_count,
               w.last_message_at as twin_last, w.title as twin_title
          from twin t join public.chat_sessions s on s.id = t.id join public.chat_sessions w on w.id = t.twin_id`;
      assert.equal(pairs.length, 30);
      for (const p of pairs) {
        assert.deepEqual([p.message_count, p.last_message_at, p.title], [
          p.twin_count,
          p.twin_last,
          p.twin_title,
        ]);
      }
    });
    const afterTwin = await totals(sql, f.employees);
    for (const e of f.employees) {
      assert.equal(afterTwin[e] - afterBulk[e], afterBulk[e] - before[e], "total_messages added by each");
    }
    assert.equal(
      afterBulk[f.employees[0]] + afterBulk[f.employees[1]] - before[f.employees[0]] -
        before[f.employees[1]],
      900,
    );
    const twinUse = await sql`select id, last_used_at from public.purchased_employees
                               where user_id = any(${f.users}::uuid[]) order by id`;
    assert.deepEqual(twinUse, bulkUse);
    assert.ok(bulkUse.every((h) => h.last_used_at !== null), "every hire was used");
  } finally {
    await f.tearDown();
    await sql.end();
  }
});

Deno.test("the chat operations read the owner's rows, none of another user's, and the same on the seed's design", async () => {
  const sql = postgres(DB_URL, { max: 2, ...options });
  const api = postgres(authenticatorUrl(DB_URL), { max: 2, ...options });
  const f = await fixture(sql, 2);
  try {
    // Few sessions with many messages: the first user's sessions, large and small.
    await generateChat(sql, { sessions: 12, messages: 1500 }, [f.users[0]], step);
    await sql`insert into public.chat_sessions (user_id, hire_id, title)
              select user_id, id, 'Empty' from public.purchased_employees where user_id = ${f.users[1]}`;
    const sample: ChatSample = await sampleChat(sql, [f.users[0]], 5);
    assert.ok(sample.large.length > 0 && sample.small.length > 0, "large and small sessions");
    const [load, small, next, mine] = chatOperations(sample);
    const body = (r: unknown) => JSON.parse((r as Record<string, string>[])[0].coalesce) as Message[];
    const read = async (op: Operation, n: number, user?: string) => {
      const call = op.call(n);
      return body(await runAsUser(api, { ...call, user: user ?? call.user }));
    };
    const newest = (session: string, offset: number) =>
      sql<Message[]>`select id, created_at from public.chat_messages where session_id = ${session}
                     order by created_at desc, id desc offset ${offset} limit ${FULL_PAGE}`;
    const ids = (rows: { id: string }[]) => rows.map((r) => r.id);

    const s = sample.large[0];
    const first = await read(load, 0);
    assert.deepEqual(ids(first), ids(await newest(s.id, 0)), "the 50 newest, newest first");
    assert.equal(first.at(-1)!.id, s.cursor, "the cursor is the oldest of the first page");
    const second = await read(next, 0);
    assert.deepEqual(ids(second), ids(await newest(s.id, FULL_PAGE)), "the 50 before them");
    const smallSession = sample.small[0];
    const [{ n }] =
      await sql`select count(*)::int as n from public.chat_messages where session_id = ${smallSession.id}`;
    assert.equal((await read(small, 0)).length, n);
    const sessions = (await read(mine, 0)) as unknown as Session[];
    assert.equal(sessions.length, 12);
    assert.deepEqual(
      sessions.map((x) => x.last_message_at),
      [...sessions.map((x) => x.last_message_at)].sort().reverse(),
    );
    // Another user reads nothing of them, and pages from their cursor nowhere.
    assert.deepEqual(await read(load, 0, f.users[1]), []);
    await assert.rejects(read(next, 0, f.users[1]), /not a message of this session you can read/);

    // The seed's design, in a transaction that is rolled back: the same statements give the same bodies.
    const calls: Call[] = [load, small, next, mine].flatMap((op) => [0, 1, 2].map((i) => op.call(i)));
    calls.push({ ...load.call(0), user: f.users[1] });
    const ours = await Promise.all(calls.map(async (c) => body(await runAsUser(api, c))));
    const ROLLBACK = new Error("rolled back");
    await sql.begin(async (tx) => {
      await tx.unsafe(CHAT_SEED_DESIGN_SQL);
      for (const [i, c] of calls.entries()) {
        await tx`select set_config('role', 'authenticated', true),
                        set_config('request.jwt.claims', ${
          JSON.stringify({ sub: c.user, role: "authenticated" })
        }, true)`;
        const seeds = body(await tx.unsafe(c.text, c.params as never[]));
        assert.deepEqual(seeds, ours[i], `call ${i} on the seed's design`);
        await tx`reset role`;
      }
      throw ROLLBACK;
    }).catch((e) => {
      if (e !== ROLLBACK) throw e;
    });
    const [{ policies }] = await sql`select count(*)::int as policies from pg_policies
                                      where tablename = 'chat_messages' and policyname like '%own chat messages'`;
    assert.equal(policies, 2, "our policies are back");
  } finally {
    await f.tearDown();
    await Promise.all([sql.end(), api.end()]);
  }
});
