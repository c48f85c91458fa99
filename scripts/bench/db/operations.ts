// bench:db's operations, each the statement PostgREST sends for it (its JSON building included), run as
// PostgREST runs a request: a real connection as `authenticator`, one transaction, `set local role authenticated`
// and the user's `request.jwt.claims`, RLS on, a prepared statement.
import type postgres from "npm:postgres@3.4.9";
import { BENCH_SLUG } from "./generate.ts";

/** A database the operations run on: ours (the stack's) or the as-audited scratch copy. */
export type Target = {
  name: string;
  /** A superuser connection (setup, EXPLAIN). */
  admin: postgres.Sql;
  /** PostgREST's: authenticator. */
  api: postgres.Sql;
  users: string[];
  /** The cursor of the marketplace's later page (popular sort), and which page it is (6 at the seed's scale). */
  laterCursor: string;
  laterPage: number;
  /** Hires to make, in order: (user, slug) pairs of available employees the user has not hired. */
  hirePlan: { user: string; slug: string }[];
};

export type Call = { user: string; text: string; params: (string | number | null)[] };
export type Operation = {
  key: string;
  name: string;
  /** The n-th call's user and statement. */
  call: (n: number) => Call;
  /** Changes data (EXPLAIN ANALYZE of it is rolled back). */
  writes?: boolean;
  /** The same operation as supabase-js sends it to /rest/v1 (for the Data API's own cost). */
  http?: (user: string) => { path: string; init?: RequestInit };
};

/** "Month to date" is the last 30 days, so the figures do not depend on the day of the month the run falls on. */
export const monthStart = () => new Date(Date.now() - 30 * 86_400_000);
const isoDay = (d: Date) => d.toISOString().slice(0, 10);

/** A read as PostgREST sends it: the rows of `query`, as the JSON body. */
export const pgrstRead = (query: string) => `select coalesce(json_agg(t), '[]')::text from (${query}) t`;
/** An RPC returning a set (a table function) as PostgREST calls it, its rows as the JSON body; named arguments. */
export const pgrstRpc = (fn: string, args: string) =>
  `select coalesce(json_agg(t), '[]')::text from public.${fn}(${args}) t`;

const listing = (args: string) =>
  `with pgrst_source as (select public.list_ai_employees(${args}) as pgrst_scalar) ` +
  `select to_json(pgrst_source.pgrst_scalar)::text as body from pgrst_source`;

/** The floor: one row by primary key, in the same transaction shape. */
export function floor(t: Target): Operation {
  return {
    key: "floor",
    name: "floor: one row by primary key",
    call: (n) => {
      const user = t.users[n % t.users.length];
      return {
        user,
        text: pgrstRead("select id from public.users where id = $1"),
        params: [user],
      };
    },
    http: (user) => ({ path: `/users?select=id&id=eq.${user}` }),
  };
}

/** The seed's operations (issue 12): the marketplace, a hire, a user's month-to-date usage. */
export function seedOperations(t: Target): Operation[] {
  const userOf = (n: number) => t.users[n % t.users.length];
  let hires = 0;
  return [
    {
      key: "marketplace-first-page",
      name: "marketplace: first page (popular, 20)",
      call: (n) => ({
        user: userOf(n),
        text: listing("p_sort := $1, p_limit := $2"),
        params: ["popular", 20],
      }),
    },
    {
      key: "marketplace-later-page",
      name: `marketplace: page ${t.laterPage} by keyset`,
      call: (n) => ({
        user: userOf(n),
        text: listing("p_sort := $1, p_limit := $2, p_after := $3"),
        params: ["popular", 20, t.laterCursor],
      }),
    },
    {
      key: "marketplace-search",
      name: 'marketplace: search "pipeline"',
      call: (n) => ({
        user: userOf(n),
        text: listing("p_query := $1, p_sort := $2, p_limit := $3"),
        params: ["pipeline", "popular", 20],
      }),
    },
    {
      key: "usage-month-sum",
      name: "usage: month-to-date sum (seed's query)",
      call: (n) => {
        const user = userOf(n);
        return {
          user,
          text:
            "select sum(cost_micro_usd) as total_cost from public.token_usage where user_id = $1 and created_at > $2",
          params: [user, monthStart().toISOString()],
        };
      },
    },
    {
      key: "usage-summary",
      name: "usage: get_usage_summary, 30 days",
      call: (n) => ({
        user: userOf(n),
        text: pgrstRpc("get_usage_summary", "p_from := $1, p_to := $2"),
        params: [isoDay(monthStart()), isoDay(new Date())],
      }),
    },
    {
      key: "hire",
      name: "hire_employee (pin, limit, analytics)",
      writes: true,
      call: () => {
        const next = t.hirePlan[hires++];
        if (!next) throw new Error(`${t.name}: the hire plan ran out (${t.hirePlan.length} hires)`);
        return {
          user: next.user,
          text: "select coalesce(json_agg(t) -> 0, 'null')::text from public.hire_employee(p_slug := $1) t",
          params: [next.slug],
        };
      },
    },
  ];
}

/** The operations of the Data API comparison (issue 11): the same call by SQL and through /rest/v1. */
export function restOperations(t: Target): Operation[] {
  const userOf = (n: number) => t.users[n % t.users.length];
  const json = { "content-type": "application/json" };
  return [
    floor(t),
    {
      key: "rest-balance",
      name: "my balance",
      call: (n) => ({
        user: userOf(n),
        text: pgrstRead("select * from public.token_balances"),
        params: [],
      }),
      http: () => ({ path: "/token_balances?select=*" }),
    },
    {
      key: "rest-ledger",
      name: "my ledger, newest 50",
      call: (n) => ({
        user: userOf(n),
        text: pgrstRead("select * from public.token_transactions order by created_at desc limit 50"),
        params: [],
      }),
      http: () => ({ path: "/token_transactions?select=*&order=created_at.desc&limit=50" }),
    },
    {
      key: "rest-usage-summary",
      name: "my usage, 30 days (RPC)",
      call: (n) => ({
        user: userOf(n),
        text: pgrstRpc("get_usage_summary", "p_from := $1, p_to := $2"),
        params: [isoDay(monthStart()), isoDay(new Date())],
      }),
      http: () => ({
        path: "/rpc/get_usage_summary",
        init: {
          method: "POST",
          headers: json,
          body: JSON.stringify({ p_from: isoDay(monthStart()), p_to: isoDay(new Date()) }),
        },
      }),
    },
    {
      key: "rest-profile-update",
      name: "update my profile",
      writes: true,
      call: (n) => {
        const user = userOf(n);
        return {
          user,
          text: "update public.user_profiles set display_name = $1 where user_id = $2",
          params: [`bench ${n}`, user],
        };
      },
      http: (user) => ({
        path: `/user_profiles?user_id=eq.${user}`,
        init: {
          method: "PATCH",
          headers: { ...json, prefer: "return=minimal" },
          body: JSON.stringify({ display_name: `bench ${performance.now()}` }),
        },
      }),
    },
  ];
}

/** Runs a call as PostgREST does: one transaction, role authenticated and the user's claims, prepared. */
export async function runAsUser(sql: postgres.Sql, call: Call): Promise<unknown> {
  return await sql.begin(async (tx) => {
    await tx`select set_config('role', 'authenticated', true),
                    set_config('request.jwt.claims', ${
      JSON.stringify({ sub: call.user, role: "authenticated" })
    }, true)`;
    return await tx.unsafe(call.text, call.params as never[], { prepare: true });
  });
}

/** What the operations need of a loaded database: the later page's cursor and a plan of hires with free slots. */
export async function prepareTarget(
  name: string,
  admin: postgres.Sql,
  api: postgres.Sql,
  users: string[],
  hiresNeeded: number,
): Promise<Target> {
  // The cursor of page 6 (after 100 employees), or of the last page a small scale has.
  let cursor: string | null = null;
  let page = 1;
  for (; page < 6; page++) {
    const [r]: { next: string | null }[] = await admin`
      select public.list_ai_employees(p_sort => 'popular', p_limit => 20, p_after => ${cursor}::text) ->> 'next_cursor'
             as next`;
    if (!r.next) break;
    cursor = r.next;
  }
  if (!cursor) throw new Error(`${name}: the listing has a single page`);
  const employees = (await admin`
    select id, slug from public.ai_employees
     where slug like ${BENCH_SLUG} and status = 'available' order by (metadata ->> 'bench')::int`) as unknown as {
    id: string;
    slug: string;
  }[];
  const hired = new Set(
    (await admin`select user_id || employee_id::text as k from public.purchased_employees
                  where user_id = any(${users}::uuid[])`).map((r) => r.k as string),
  );
  // Round by round, one hire per user each round, of employees spread over the catalog.
  const plan: { user: string; slug: string }[] = [];
  const taken = new Map<string, number>();
  for (let round = 0; plan.length < hiresNeeded && round < 3; round++) {
    users.forEach((user, i) => {
      if (plan.length >= hiresNeeded) return;
      for (let k = taken.get(user) ?? 0; k < employees.length; k++) {
        const e = employees[(i * 7 + k) % employees.length];
        if (!hired.has(user + e.id)) {
          plan.push({ user, slug: e.slug });
          taken.set(user, k + 1);
          return;
        }
      }
    });
  }
  if (plan.length < hiresNeeded) {
    throw new Error(
      `${name}: only ${plan.length} hires with free slots, ${hiresNeeded} needed (a larger --scale)`,
    );
  }
  return { name, admin, api, users, laterCursor: cursor, laterPage: page, hirePlan: plan };
}
