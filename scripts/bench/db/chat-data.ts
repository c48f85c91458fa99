// bench:db's chat data (issue 13): --scale 1 is 200 000 chat sessions and 2 000 000 chat messages of the generated
// users, set-based (generate_series, window functions), deterministic under setseed so both copies get the same shape.
//
//   sessions  chat_sessions, through the table's triggers and foreign keys as a client's insert goes (the hire's
//             employee is set by _200_set_employee): per user a log-normal share (many users with a few sessions,
//             a few with hundreds, some with none), each with one of the user's hires, over the last 4 to 180 days;
//             70 % titled by the user, 5 % pinned, 15 % archived
//   messages  chat_messages, a log-normal number per session (at least 1; most 2-15, about 2.5 % with 50 or more, a
//             few hundred at most), a linear thread (parent_id the previous message), user and assistant turns with
//             tool results among them, content of realistic length (user 40-600 characters, assistant 200-3 000,
//             tool 100-1 500) cut from a pool of sentences, the model columns and statuses an agent run writes
//
// Set-based shortcut, as for token_usage in generate.ts (a trigger per statement of 2 000 000 rows, and two foreign-key
// checks per row, would blow the time budget): the messages are inserted with session_replication_role = replica, so
// neither their roll-up trigger nor their foreign-key checks fire (the rows are consistent by construction: ids are
// md5 of (session, position), each parent is the previous message of the same session, user_id is the session's
// owner), then ONE statement sets what private.tg_chat_messages__roll_up would have set: each session's
// message_count, last_message_at and (when untitled) the title from its first user message, the employees'
// total_messages as analytics deltas (folded), and the hires' last_used_at. scripts/test/bench_chat_test.ts proves that
// end state equal to the trigger's on the same messages.
import type postgres from "npm:postgres@3.4.9";

export type ChatScale = { sessions: number; messages: number };

/** The messages are inserted in this many transactions at once. */
const PARTS = 2;

export const chatScaleOf = (factor: number): ChatScale => ({
  sessions: Math.round(200_000 * factor),
  messages: Math.round(2_000_000 * factor),
});

// What the messages are cut from: sentences of the kind a user and their AI employees write, about 9 kB.
const SENTENCES = [
  "Can you draft a follow-up email to the leads from yesterday's webinar?",
  "Here is a first draft that keeps the tone friendly and the ask specific.",
  "I pulled the last quarter's pipeline numbers and grouped them by stage.",
  "The conversion from demo to proposal dropped by four points in October.",
  "Please summarise the three competitor reports and list what they charge.",
  "Based on the search results, two of them moved to usage-based pricing this year.",
  "Could you rewrite the onboarding checklist so a new customer finishes it in a day?",
  "I shortened it to seven steps and moved the data import to the second step.",
  "The invoice from the hosting provider does not match the purchase order.",
  "I reconciled the receipts for November; three expenses have no receipt attached.",
  "Let's schedule the interviews for the backend role next Tuesday and Wednesday.",
  "I found four open slots and drafted the invitations for the candidates.",
  "What are the main keywords we rank for, and where did we lose traffic?",
  "Organic traffic fell on the pricing page after the title change on the 12th.",
  "Write the release notes for version 2.4 in plain language for customers.",
  "The regression suite found a failing test in the export path; here is the trace.",
  "I checked the ticket queue: most of today's tickets are about password resets.",
  "A short macro answering the reset question would close about a third of them.",
  "Give me a table of the ten largest accounts with their renewal dates.",
  "Renewals in the next sixty days add up to about a fifth of annual revenue.",
  "Make the newsletter intro warmer and cut it to two short paragraphs.",
  "The survey has 412 answers so far; satisfaction is highest among small teams.",
  "Can you check whether the migration script handles the empty-table case?",
  "It does not: the script assumes at least one row and fails on the first insert.",
  "Thanks, that is exactly what I needed; now make a version for the board.",
  "Sure. I kept the numbers, removed the internal jargon and added a one-line summary.",
  "Search the web for the latest guidance on data retention for customer emails.",
  "According to the sources I found, most guidance suggests keeping them no longer than needed.",
  "Draft a polite reply declining the partnership but leaving the door open.",
  "I would also mention the timeline, so they know when to come back to you.",
  "Which of the open deals are at risk of slipping into next quarter?",
  "Five deals have had no activity for three weeks and two lost their champion.",
];
const POOL = Array.from(
  { length: 3 },
  (_, round) =>
    SENTENCES.map((_, i) => SENTENCES[(i * (5 + 2 * round) + round) % SENTENCES.length]).join(" "),
).join(" ");
/** The titles users give sessions (the rest are titled from their first user message). */
export const CHAT_TITLES = [
  "Q4 pipeline review",
  "Webinar follow-ups",
  "Competitor pricing",
  "Onboarding checklist",
  "November bookkeeping",
  "Backend hiring",
  "SEO traffic drop",
  "Release notes 2.4",
  "Support macros",
  "Board update",
  "Newsletter draft",
  "Renewals at risk",
];

/** Deletes the chat data of the given users' rows quickly (no per-row cascades or roll-ups; their employees go too). */
export async function cleanupChat(sql: postgres.Sql, userEmailLike: string): Promise<void> {
  await sql.begin(async (tx) => {
    // Replica: neither the parent_id cascade (a statement per message) nor the roll-up triggers fire. What they would
    // keep (the sessions' counters, the employees' analytics, the hires' last use) goes with the bench users and
    // employees right after.
    await tx`set local session_replication_role = replica`;
    await tx`delete from public.chat_messages
              where user_id in (select id from auth.users where email like ${userEmailLike})`;
    await tx`delete from public.chat_sessions
              where user_id in (select id from auth.users where email like ${userEmailLike})`;
  });
}

/** Sessions and messages for `users` (who must have hires); returns how many of each it wrote. */
export async function generateChat(
  sql: postgres.Sql,
  scale: ChatScale,
  users: string[],
  step: (what: string, run: () => Promise<unknown>) => Promise<void>,
): Promise<{ sessions: number; messages: number }> {
  if (scale.messages < scale.sessions) throw new Error("at least one message per session");
  await step(`${scale.sessions} chat sessions`, () =>
    sql.begin(async (tx) => {
      await tx`select setseed(0.44)`;
      // A log-normal weight per user (sigma 1.1); cumulative bounds split the total exactly.
      await tx`
        with u as (
          select x.id, x.n, exp(1.1 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())) as w
            from unnest(${users}::uuid[]) with ordinality as x(id, n)
        ), c as (
          select u.*, sum(u.w) over (order by u.n) as cum, sum(u.w) over () as total, count(*) over () as users from u
        ), b as (
          select c.*, case when c.n = c.users then ${scale.sessions}::bigint
                           else floor(c.cum / c.total * ${scale.sessions})::bigint end as bound from c
        ), k as (
          select b.id, b.n, b.bound - coalesce(lag(b.bound) over (order by b.n), 0) as sessions from b
        ), h as (
          select h.user_id, array_agg(h.id order by h.hired_at, h.id) as hires
            from public.purchased_employees h where h.user_id = any(${users}::uuid[]) group by h.user_id
        ), s as (
          select k.id as user_id, h.hires[1 + floor(random() * cardinality(h.hires))::int] as hire_id,
                 now() - make_interval(secs => (4 + 176 * random()) * 86400) as created_at,
                 case when random() < 0.7
                   then (${CHAT_TITLES}::text[])[1 + floor(random() * ${CHAT_TITLES.length})::int] end as title,
                 random() < 0.05 as is_pinned, random() < 0.15 as is_archived
            from k join h on h.user_id = k.id, generate_series(1, k.sessions) g
           order by k.n, g
        )
        insert into public.chat_sessions
          (user_id, hire_id, title, is_pinned, is_archived, created_at, updated_at, last_message_at)
        select s.user_id, s.hire_id, s.title, s.is_pinned, s.is_archived, s.created_at, s.created_at, s.created_at
          from s`;
    }));

  // In PARTS transactions at once (the users split in turn), so the load uses every core once the other copy is
  // done; each part's messages are in proportion to its sessions.
  const parts = Array.from({ length: PARTS }, (_, p) => users.filter((_, i) => i % PARTS === p));
  const sessionsOf = async (part: string[]) =>
    (await sql`select count(*)::int as n from public.chat_sessions where user_id = any(${part}::uuid[])`)[0]
      .n as number;
  const perPart = await Promise.all(parts.map(sessionsOf));
  const total = perPart.reduce((a, b) => a + b, 0);
  const messagesOf = (p: number) =>
    p === PARTS - 1
      ? scale.messages -
        perPart.slice(0, -1).reduce((a, n) => a + Math.round((scale.messages * n) / total), 0)
      : Math.round((scale.messages * perPart[p]) / total);
  await step(
    `${scale.messages} chat messages (triggers off) in ${PARTS} transactions at once`,
    () =>
      Promise.all(parts.map((part, p) =>
        sql.begin(async (tx) => {
          const messages = messagesOf(p);
          if (messages < perPart[p]) throw new Error("at least one message per session");
          await tx`select setseed(${0.45 + p / 100})`;
          await tx`set local session_replication_role = replica`;
          // A log-normal weight per session (sigma 1.2): at least one message each, the rest split by cumulative
          // bounds.
          await tx`
          with s as (
            select s.id, s.user_id, s.created_at, row_number() over (order by u.n, s.created_at, s.id) as rn
              from public.chat_sessions s join unnest(${part}::uuid[]) with ordinality as u(id, n) on u.id = s.user_id
          ), w as (
            select s.*, exp(1.2 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())) as w from s
          ), c as (
            select w.*, sum(w.w) over (order by w.rn) as cum, sum(w.w) over () as total, count(*) over () as sessions
              from w
          ), b as (
            select c.*, case when c.rn = c.sessions then ${messages}::bigint - c.sessions
                             else floor(c.cum / c.total * (${messages}::bigint - c.sessions))::bigint end as bound
              from c
          ), k as (
            select b.id, b.user_id, b.created_at,
                   1 + b.bound - coalesce(lag(b.bound) over (order by b.rn), 0) as messages
              from b
          ), p as (
            select array_agg(m.provider order by m.provider, m.model) as provider,
                   array_agg(m.model order by m.provider, m.model) as model
              from public.model_pricing m
             where m.effective_from <= now() and (m.effective_to is null or m.effective_to > now())
          ), m as (
            select k.id as session_id, k.user_id, j, k.created_at + make_interval(secs => j * 40 + floor(random() * 35))
                     as created_at,
                   case when j % 2 = 1 then 'user' when random() < 0.1 then 'tool' else 'assistant' end as role,
                   random() as r, random() as q, random() as o
              from k, generate_series(1, k.messages) j
          )
          insert into public.chat_messages
            (id, session_id, user_id, role, content, parts, parent_id, run_id, model, provider, gateway_request_id,
             status, error_code, created_at, updated_at)
          select md5(m.session_id::text || ':' || m.j)::uuid, m.session_id, m.user_id, m.role,
                 substr(${POOL}, 1 + floor(m.o * (${POOL.length} - x.len))::int, x.len),
                 case m.role
                   when 'tool' then jsonb_build_array(jsonb_build_object('type', 'tool_result', 'tool_call_id',
                     'call_' || m.j, 'name', 'web_search', 'output', jsonb_build_object('results', 1 + m.j % 5)))
                   when 'assistant' then case when m.r < 0.1 then jsonb_build_array(jsonb_build_object('type',
                     'tool_call', 'tool_call_id', 'call_' || m.j, 'name', 'web_search', 'input',
                     jsonb_build_object('query', 'pipeline benchmarks'))) end
                 end,
                 case when m.j > 1 then md5(m.session_id::text || ':' || (m.j - 1))::uuid end,
                 case when m.role <> 'user' then md5(m.session_id::text || ':run:' || (m.j / 2))::uuid end,
                 case when m.role <> 'user' then p.model[1 + m.j % cardinality(p.model)] end,
                 case when m.role <> 'user' then p.provider[1 + m.j % cardinality(p.provider)] end,
                 case when m.role = 'assistant' then 'bench-chat-' || md5(m.session_id::text || ':' || m.j) end,
                 case when m.role <> 'assistant' then 'complete' when m.r > 0.99 then 'cancelled'
                      when m.r > 0.97 then 'failed' else 'complete' end,
                 case when m.role = 'assistant' and m.r > 0.99 then 'cancelled'
                      when m.role = 'assistant' and m.r > 0.97 then 'provider_error' end,
                 m.created_at, m.created_at
            from m, p,
                 lateral (select case m.role when 'user' then 40 + floor(560 * m.q ^ 2)::int
                                             when 'tool' then 100 + floor(1400 * m.q ^ 2)::int
                                             else 200 + floor(2800 * m.q ^ 2)::int end as len) x`;
        })
      )),
  );
  // Statistics first, so the counters' statement is planned for 2 000 000 messages, not for the tables as they were
  // before the load (once, without this, it ran for over 10 minutes instead of 20 s).
  await step("analyze of the chat tables", () => sql`analyze public.chat_sessions, public.chat_messages`);
  await step(
    "the sessions' counters, the analytics deltas and the hires' last use, in one statement",
    () =>
      sql.begin(async (tx) => {
        // Its aggregates over 2 000 000 rows in memory rather than in temporary files (a slow disk here).
        await tx`set local work_mem = '256MB'`;
        await setChatCounters(tx, users);
      }),
  );
  await step(
    "vacuum (analyze) of the chat tables",
    () => sql`vacuum (analyze) public.chat_sessions, public.chat_messages`,
  );
  await step(
    "analytics folded (the chat messages' deltas)",
    () => sql`select private.fold_employee_analytics()`,
  );

  const [c] = await sql`
    select (select count(*) from public.chat_sessions where user_id = any(${users}::uuid[]))::int as sessions,
           (select count(*) from public.chat_messages where user_id = any(${users}::uuid[]))::int as messages`;
  return c as unknown as { sessions: number; messages: number };
}

/**
 * What private.tg_chat_messages__roll_up sets for inserted messages, in one statement over all messages of the users'
 * sessions (each session counted from no messages: every session of `users` is new): message_count, last_message_at
 * and the title of an untitled session from its first user message; the employees' total_messages as analytics
 * deltas; the hires' last_used_at from their newest user message.
 */
export async function setChatCounters(
  sql: postgres.Sql | postgres.TransactionSql,
  users: string[],
): Promise<void> {
  await sql`
    with per_session as (
      select m.session_id, count(*)::integer as messages, max(m.created_at) as last_at
        from public.chat_messages m where m.user_id = any(${users}::uuid[]) group by m.session_id
    ), first_user_text as (
      -- The trigger's (array_agg(content order by created_at, id) filter (where role = 'user'))[1], for the
      -- sessions it titles (the untitled ones) only.
      select distinct on (m.session_id) m.session_id, m.content
        from public.chat_messages m join public.chat_sessions s on s.id = m.session_id and s.title is null
       where m.user_id = any(${users}::uuid[]) and m.role = 'user'
       order by m.session_id, m.created_at, m.id
    ), sessions as (
      update public.chat_sessions s
         set message_count = s.message_count + p.messages,
             last_message_at = greatest(s.last_message_at, p.last_at),
             title = case when s.title is null
               then nullif(btrim(left(btrim(regexp_replace(f.content, '\\s+', ' ', 'g')), 80)), '')
               else s.title end
        from per_session p left join first_user_text f on f.session_id = p.session_id
       where s.id = p.session_id
      returning s.employee_id, p.messages
    ), hires as (
      update public.purchased_employees h
         set last_used_at = x.used_at
        from (select s.hire_id, max(m.created_at) as used_at
                from public.chat_messages m join public.chat_sessions s on s.id = m.session_id
               where m.user_id = any(${users}::uuid[]) and m.role = 'user' group by s.hire_id) x
       where h.id = x.hire_id and (h.last_used_at is null or h.last_used_at < x.used_at)
    )
    insert into private.employee_analytics_deltas (employee_id, messages)
    select s.employee_id, sum(s.messages) from sessions s group by s.employee_id`;
}
