// bench:db's data generator: the seed's scale (--scale 1: 10 000 users, 500 AI employees with versions, 50 000
// hires, 2 000 000 token_usage rows; 200 000 chat sessions with 2 000 000 messages, in chat-data.ts), set-based
// (generate_series, unnest), written as users bench-*@example.com and employees bench-* so cleanup() can remove
// exactly them.
//
// Through the product's real tables and triggers, as production writes them:
//   users        auth.users → the identity trigger (public.users, profile, settings, balance)
//   employees    ai_employees → price check, version 1, analytics row, catalog version; versions 2 and 3 by
//                updating the prompt (the version trigger records them)
//   hires        purchased_employees → pin, admit (availability, the plan's cap under the user's row lock),
//                analytics deltas; folded into employee_analytics at the end (private.fold_employee_analytics)
//   ratings      employee_ratings → stamp the version, analytics deltas
//   ledger       private.update_user_token_balance, the ledger's one writer
// Set-based shortcut (a trigger per row would blow the time budget; the end state is identical):
//   token_usage  inserted with session_replication_role = replica (its roll-up trigger, and the foreign-key
//                checks of rows whose users exist, do not fire), then usage_daily written in one
//                insert … group by with exactly the trigger's sums (the users are new, so every day row is too).
import type postgres from "npm:postgres@3.4.9";
import { type ChatScale, chatScaleOf, cleanupChat, generateChat } from "./chat-data.ts";
import { progress } from "./stack.ts";

export type Scale = {
  users: number;
  employees: number;
  hires: number;
  usage: number;
  ledgerPerUser: number;
  chat: ChatScale;
};

export function scaleOf(factor: number): Scale {
  if (!(factor > 0 && factor <= 10)) throw new Error(`--scale must be in (0, 10], got ${factor}`);
  return {
    users: Math.round(10_000 * factor),
    employees: Math.max(30, Math.round(500 * factor)),
    hires: Math.round(50_000 * factor),
    usage: Math.round(2_000_000 * factor),
    ledgerPerUser: 5,
    chat: chatScaleOf(factor),
  };
}

export const BENCH_EMAIL = "bench-%@example.com";
export const BENCH_SLUG = "bench-%";

export type Loaded = { users: string[]; counts: Record<string, number>; seconds: number };

const CATEGORY_ROLES: [string, string, string, string][] = [
  // category, role, department, words of its description (full-text search finds them)
  ["sales", "Sales Development Representative", "Sales", "outreach prospecting pipeline meetings leads"],
  ["sales", "Account Executive", "Sales", "pipeline deals proposals negotiation forecasting"],
  ["marketing", "Content Marketer", "Marketing", "blog articles newsletters campaigns brand voice"],
  ["marketing", "SEO Specialist", "Marketing", "keywords rankings backlinks audits search traffic"],
  ["support", "Customer Support Agent", "Support", "tickets replies refunds escalations satisfaction"],
  ["support", "Onboarding Specialist", "Support", "onboarding checklists tutorials activation customers"],
  ["engineering", "Backend Engineer", "Engineering", "code reviews APIs databases migrations tests"],
  ["engineering", "QA Engineer", "Engineering", "test plans regressions bugs releases automation"],
  ["research", "Market Research Analyst", "Research", "competitors surveys trends reports markets"],
  ["research", "Data Analyst", "Research", "dashboards metrics queries cohorts insights"],
  ["operations", "Bookkeeper", "Finance", "invoices receipts reconciliation month-end expenses"],
  ["operations", "Recruiting Coordinator", "People", "candidates interviews scheduling job posts hiring"],
];

/** Deletes every row the generator made (chat first, in bulk; then users: their hires, ratings, usage and ledger
 * cascade). */
export async function cleanup(sql: postgres.Sql): Promise<void> {
  await cleanupChat(sql, BENCH_EMAIL);
  await sql`delete from auth.users where email like ${BENCH_EMAIL}`;
  await sql`delete from public.ai_employees where slug like ${BENCH_SLUG}`;
}

export async function generate(sql: postgres.Sql, scale: Scale, label: string): Promise<Loaded> {
  const started = performance.now();
  const step = async (what: string, run: () => Promise<unknown>) => {
    const t = performance.now();
    await run();
    progress(`${label}: ${what} (${((performance.now() - t) / 1000).toFixed(1)} s)`);
  };
  await cleanup(sql);

  await step(`${scale.employees} employees`, () =>
    sql`
    insert into public.ai_employees
      (slug, name, role, category, department, level, status, short_description, long_description, capabilities,
       tools, provider, model, generation_settings, display_cost, metadata, system_prompt)
    select 'bench-' || i || '-' || lower(replace(r.role, ' ', '-')),
           'Bench ' || r.role || ' ' || i, r.role, r.category, r.department,
           (array['junior', 'mid', 'senior', 'lead'])[1 + i % 4],
           case when i % 20 = 0 then 'coming_soon' else 'available' end,
           'A ' || lower(r.role) || ' for ' || r.words,
           'Bench employee ' || i || ' works on ' || r.words || '. ' || repeat('It writes clear notes. ', 1 + i % 5),
           string_to_array(r.words, ' '), array['web.search', 'docs.read', 'email.draft'],
           p.provider[1 + i % cardinality(p.provider)], p.model[1 + i % cardinality(p.model)],
           jsonb_build_object('temperature', 0.3 + (i % 5) / 10.0, 'max_output_tokens', 1000 + 100 * (i % 10)),
           '≈ ' || (1 + i % 9) || 'k tokens a task', jsonb_build_object('bench', i),
           'You are a ' || r.role || '. Focus on ' || r.words || '. ' || repeat('Be concise and cite sources. ', 20)
      from generate_series(1, ${scale.employees}) i
     cross join lateral (
           select (${CATEGORY_ROLES.map((r) => r[0])}::text[])[1 + i % ${CATEGORY_ROLES.length}] as category,
                  (${CATEGORY_ROLES.map((r) => r[1])}::text[])[1 + i % ${CATEGORY_ROLES.length}] as role,
                  (${
      CATEGORY_ROLES.map((r) => r[2])
    }::text[])[1 + i % ${CATEGORY_ROLES.length}] as department,
                  (${CATEGORY_ROLES.map((r) => r[3])}::text[])[1 + i % ${CATEGORY_ROLES.length}] as words) r
     cross join (select array_agg(m.provider order by m.provider, m.model) as provider,
                        array_agg(m.model order by m.provider, m.model) as model
                   from public.model_pricing m
                  where m.effective_from <= now() and (m.effective_to is null or m.effective_to > now())) p`);
  await step("versions 2 and 3 of half and a quarter of them", async () => {
    for (const every of [2, 4]) {
      await sql`
        update public.ai_employees
           set system_prompt = system_prompt || ' Revised: ask one clarifying question first.',
               change_note = 'bench revision'
         where slug like ${BENCH_SLUG} and (metadata ->> 'bench')::int % ${every} = 0`;
    }
  });

  let users: string[] = [];
  await step(`${scale.users} users (pro plan)`, async () => {
    users = (await sql`
      insert into auth.users (id, aud, role, email, email_confirmed_at, raw_user_meta_data, raw_app_meta_data)
      select gen_random_uuid(), 'authenticated', 'authenticated', 'bench-' || i || '@example.com', now(),
             jsonb_build_object('full_name', 'Bench User ' || i), '{"provider":"email","providers":["email"]}'
        from generate_series(1, ${scale.users}) i
      returning id`).map((r) => r.id as string);
    // Pro (10 active hires): every user keeps free slots for the hire benchmark.
    await sql`update public.users set plan = 'pro' where id = any(${users}::uuid[])`;
  });

  // Hires: 3 to 7 per user (5 on average), of distinct available employees, skewed to popular ones; 10 % inactive.
  const hiresPerUser = scale.hires / scale.users;
  await step(`about ${scale.hires} hires`, () =>
    sql.begin(async (tx) => {
      await tx`select setseed(0.42)`;
      await tx`
        with a as (select array_agg(e.id order by (e.metadata ->> 'bench')::int) as ids
                     from public.ai_employees e where e.slug like ${BENCH_SLUG} and e.status = 'available'),
             u as (select x.id, ${Math.round(hiresPerUser) - 2}::int + (x.n % 5)::int as h
                     from unnest(${users}::uuid[]) with ordinality as x(id, n)),
             c as (select u.id as user_id, u.h, g as c, floor(cardinality(a.ids) * random() ^ 2)::int as idx
                     from u, a, generate_series(1, 4 * u.h) g),
             d as (select distinct on (c.user_id, c.idx) c.* from c order by c.user_id, c.idx, c.c),
             r as (select d.*, row_number() over (partition by d.user_id order by d.c) as rk from d)
        insert into public.purchased_employees (user_id, employee_id, is_active, hired_at, last_used_at)
        select r.user_id, a.ids[1 + r.idx], random() > 0.1, now() - random() * interval '180 days',
               case when random() < 0.6 then now() - random() * interval '45 days' end
          from r, a where r.rk <= r.h
         order by r.user_id, r.c`;
    }));
  await step("ratings of a fifth of the hires", () =>
    sql.begin(async (tx) => {
      await tx`select setseed(0.43)`;
      await tx`
        insert into public.employee_ratings (user_id, employee_id, stars, review)
        select h.user_id, h.employee_id, least(5, 1 + floor(5 * sqrt(random())))::smallint,
               case when random() < 0.5 then 'Bench review: helpful on ' || h.employee_id end
          from public.purchased_employees h
         where h.user_id = any(${users}::uuid[]) and random() < 0.2`;
    }));
  await step("analytics folded", () => sql`select private.fold_employee_analytics()`);

  await step(`${scale.usage} token_usage rows and their usage_daily`, () =>
    sql.begin(async (tx) => {
      await tx`set local session_replication_role = replica`;
      const chunk = 500_000;
      for (let from = 0; from < scale.usage; from += chunk) {
        await tx`
          insert into public.token_usage (request_id, user_id, provider, model, input_tokens, output_tokens,
                                          cached_input_tokens, cost_micro_usd, debited_tokens, status, http_status,
                                          latency_ms, created_at)
          -- Each user calls three models, a few times a day over the last 60 days.
          select 'bench-' || g, u.ids[1 + g % cardinality(u.ids)],
                 p.provider[1 + (3 * (g % cardinality(u.ids)) + g % 3) % cardinality(p.provider)],
                 p.model[1 + (3 * (g % cardinality(u.ids)) + g % 3) % cardinality(p.model)], 200 + g % 3000, 50 + g % 800, (g % 3000) / 4,
                 20 + g % 5000, 1 + g % 50, 'ok', 200, 300 + g % 2000,
                 now() - make_interval(secs => (g * 7919 % (60 * 86400))::double precision)
            from generate_series(${from + 1}::bigint, ${Math.min(scale.usage, from + chunk)}::bigint) g,
                 (select ${users}::uuid[] as ids) u,
                 (select array_agg(m.provider order by m.provider, m.model) as provider,
                         array_agg(m.model order by m.provider, m.model) as model
                    from public.model_pricing m
                   where m.effective_from <= now() and (m.effective_to is null or m.effective_to > now())) p`;
      }
      await tx`set local session_replication_role = origin`;
      // What private.tg_token_usage__roll_up adds row by row, in one statement.
      await tx`
        insert into public.usage_daily (user_id, day, provider, model, requests, input_tokens, cached_input_tokens,
                                        output_tokens, cost_micro_usd, unpriced_requests)
        select t.user_id, (t.created_at at time zone 'UTC')::date, t.provider, t.model, count(*),
               sum(t.input_tokens), sum(t.cached_input_tokens), sum(t.output_tokens),
               sum(coalesce(t.cost_micro_usd, 0)), count(*) filter (where t.price_missing)
          from public.token_usage t where t.user_id = any(${users}::uuid[])
         group by 1, 2, 3, 4`;
    }));

  await step(`${scale.users * scale.ledgerPerUser} ledger rows`, async () => {
    for (let i = 0; i < users.length; i += 1000) {
      await sql`
        select private.update_user_token_balance(u.id, 1000 + n, 'adjustment', 'bench:' || u.id || ':' || n)
          from unnest(${users.slice(i, i + 1000)}::uuid[]) u(id), generate_series(1, ${scale.ledgerPerUser}) n
         order by u.id, n`;
    }
  });
  await generateChat(sql, scale.chat, users, step);
  await step(
    "analyze",
    () =>
      sql`analyze auth.users, public.users, public.ai_employees, public.ai_employee_versions,
                public.purchased_employees, public.employee_ratings, public.employee_analytics,
                private.employee_analytics_deltas, public.token_usage, public.usage_daily,
                public.token_transactions, public.token_balances, public.chat_sessions, public.chat_messages`,
  );

  const [c] = await sql`
    select (select count(*) from public.users where id = any(${users}::uuid[]))::int as users,
           (select count(*) from public.ai_employees where slug like ${BENCH_SLUG})::int as employees,
           (select count(*) from public.ai_employee_versions v join public.ai_employees e on e.id = v.employee_id
             where e.slug like ${BENCH_SLUG})::int as versions,
           (select count(*) from public.purchased_employees where user_id = any(${users}::uuid[]))::int as hires,
           (select count(*) from public.employee_ratings where user_id = any(${users}::uuid[]))::int as ratings,
           (select count(*) from public.token_usage where user_id = any(${users}::uuid[]))::int as token_usage,
           (select count(*) from public.usage_daily where user_id = any(${users}::uuid[]))::int as usage_daily,
           (select count(*) from public.token_transactions where user_id = any(${users}::uuid[]))::int as ledger,
           (select count(*) from public.chat_sessions where user_id = any(${users}::uuid[]))::int as chat_sessions,
           (select count(*) from public.chat_messages where user_id = any(${users}::uuid[]))::int as chat_messages`;
  const seconds = (performance.now() - started) / 1000;
  progress(`${label}: loaded in ${seconds.toFixed(1)} s: ${JSON.stringify(c)}`);
  return { users, counts: c as unknown as Record<string, number>, seconds };
}
