// npm run bench:db — what a user's everyday database operations cost, measured as PostgREST runs them, and the
// same operations through the local Data API (/rest/v1 over HTTP), so the stand-in's own cost is visible.
// A benchmark script, never a test: it asserts nothing and only reports (DESIGN.md §4).
//
//   direct SQL   a real connection as `authenticator`, each operation in its own transaction with
//                `set local role authenticated` and the user's `request.jwt.claims`, RLS on, prepared
//                statements: exactly the statements PostgREST sends, without HTTP
//   /rest/v1     the same operation sent by fetch to the API URL (gateway → Data API stand-in → Postgres),
//                with the anon key and the user's access token, as supabase-js sends it
//   service      the same request sent straight to the Data API stand-in (REST_PORT, 54341), without the
//                gateway hop: what the stand-in itself costs
//   floor        a primary-key lookup of one row in the same transaction shape (the least a request costs)
//
// Operations: a user's balance; the newest page (50) of their ledger; their usage summary for the month
// (the get_usage_summary RPC); an update of their profile (a write, RLS-checked).
//
// Data: BENCH_USERS users (default 2000), each with BENCH_LEDGER ledger rows (default 100) and BENCH_USAGE
// usage rows spread over 60 days (default 100), loaded into the stack's database as users bench-*@example.com
// and deleted at the end with everything that cascades from them. The stack must be up (npm start).
//
// env (all optional): BENCH_USERS=2000 BENCH_LEDGER=100 BENCH_USAGE=100 BENCH_RUNS=1000 (per operation,
// target and concurrency) BENCH_CONCURRENCY=1,16.
import postgres from "npm:postgres@3.4.9";
import { projectJwt, readKeys } from "../stack/keys-file.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const num = (name: string, fallback: number) => Number(Deno.env.get(name) ?? fallback);
const USERS = num("BENCH_USERS", 2000);
const LEDGER = num("BENCH_LEDGER", 100);
const USAGE = num("BENCH_USAGE", 100);
const RUNS = num("BENCH_RUNS", 1000);
const CONCURRENCY = (Deno.env.get("BENCH_CONCURRENCY") ?? "1,16").split(",").map(Number);

const status = new TextDecoder().decode(
  (await new Deno.Command("bash", { args: [`${ROOT}scripts/stack/status.sh`, "-o", "env"] }).output()).stdout,
);
const stackEnv = Object.fromEntries(
  status.split("\n").filter(Boolean).map((l) => {
    const i = l.indexOf("=");
    return [l.slice(0, i), l.slice(i + 1)];
  }),
);
const DB_URL: string = stackEnv.DB_URL;
const API_URL: string = stackEnv.API_URL;
const ANON_KEY: string = stackEnv.ANON_KEY;
const keys = await readKeys(`${Deno.env.get("STACK_DIR") ?? `${ROOT}.stack`}/keys.json`);
const jwt = projectJwt(keys);
const REST_SERVICE_URL = `http://127.0.0.1:${Deno.env.get("REST_PORT") ?? 54341}`;
const progress = (msg: string) => console.error(`[bench:db] ${msg}`);

const admin = postgres(DB_URL, { max: 4, onnotice: () => {} });
// PostgREST's own connection: the authenticator role, which only gains privileges through `set local role`.
const authenticatorUrl = DB_URL.replace(/\/\/[^:]+:[^@]+@/, "//authenticator:postgres@");
const api = postgres(authenticatorUrl, { max: Math.max(...CONCURRENCY), onnotice: () => {} });

// ------------------------------------------------------------------------------------------------ data
async function load(): Promise<string[]> {
  progress(`loading ${USERS} users, ${USERS * LEDGER} ledger rows, ${USERS * USAGE} usage rows`);
  const started = performance.now();
  await admin`delete from auth.users where email like 'bench-%@example.com'`;
  const ids = (await admin`
    insert into auth.users (id, aud, role, email, email_confirmed_at, raw_user_meta_data, raw_app_meta_data)
    select gen_random_uuid(), 'authenticated', 'authenticated', 'bench-' || i || '@example.com', now(), '{}',
           '{"provider":"email","providers":["email"]}'
      from generate_series(1, ${USERS}) i
    returning id`).map((r) => r.id as string);
  // The ledger through its one writer, a batch of users per statement.
  for (let i = 0; i < ids.length; i += 200) {
    await admin`
      select private.update_user_token_balance(u.id, 1000 + n, 'adjustment', 'bench:' || u.id || ':' || n)
        from unnest(${ids.slice(i, i + 200)}::uuid[]) u(id), generate_series(1, ${LEDGER}) n
       order by u.id, n`;
  }
  await admin`
    insert into public.token_usage (request_id, user_id, provider, model, input_tokens, output_tokens,
                                    cost_micro_usd, status, created_at)
    select 'bench-' || gen_random_uuid(), u.id, 'openai', (array['gpt-4o-mini', 'gpt-4o'])[1 + n % 2],
           500 + n, 100 + n, 40 + n, 'ok', now() - make_interval(days => n % 60, secs => n)
      from unnest(${ids}::uuid[]) u(id), generate_series(1, ${USAGE}) n`;
  await admin`analyze public.token_transactions, public.token_usage, public.usage_daily, public.token_balances`;
  progress(`loaded in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return ids;
}

// ------------------------------------------------------------------------------------------ operations
type Operation = {
  name: string;
  /** The statement PostgREST sends for it (its JSON building included), run as the user. */
  sql: (tx: postgres.TransactionSql, user: string) => Promise<unknown>;
  /** The same operation as supabase-js sends it. */
  http: (user: string) => Request;
};
const monthStart = new Date().toISOString().slice(0, 8) + "01";
const today = new Date().toISOString().slice(0, 10);
const tokens = new Map<string, string>();
const headers = (user: string, extra: Record<string, string> = {}) => ({
  apikey: ANON_KEY,
  authorization: `Bearer ${tokens.get(user)}`,
  ...extra,
});
const operations: Operation[] = [
  {
    name: "floor: one row by primary key",
    sql: (tx, user) => tx`select id from public.users where id = ${user}`,
    http: (user) =>
      new Request(`${API_URL}/rest/v1/users?select=id&id=eq.${user}`, { headers: headers(user) }),
  },
  {
    name: "my balance",
    sql: (tx) => tx`select coalesce(json_agg(t), '[]') from (select * from public.token_balances) t`,
    http: (user) => new Request(`${API_URL}/rest/v1/token_balances?select=*`, { headers: headers(user) }),
  },
  {
    name: "my ledger, newest 50",
    sql: (tx) =>
      tx`select coalesce(json_agg(t), '[]') from (
           select * from public.token_transactions order by created_at desc limit 50) t`,
    http: (user) =>
      new Request(`${API_URL}/rest/v1/token_transactions?select=*&order=created_at.desc&limit=50`, {
        headers: headers(user),
      }),
  },
  {
    name: "my usage this month (RPC)",
    sql: (tx) =>
      tx`select coalesce(json_agg(t), '[]') from public.get_usage_summary(${monthStart}::date, ${today}::date) t`,
    http: (user) =>
      new Request(`${API_URL}/rest/v1/rpc/get_usage_summary`, {
        method: "POST",
        headers: headers(user, { "content-type": "application/json" }),
        body: JSON.stringify({ p_from: monthStart, p_to: today }),
      }),
  },
  {
    name: "update my profile",
    sql: (tx, user) =>
      tx`update public.user_profiles set display_name = ${
        "bench " + performance.now()
      } where user_id = ${user}`,
    http: (user) =>
      new Request(`${API_URL}/rest/v1/user_profiles?user_id=eq.${user}`, {
        method: "PATCH",
        headers: headers(user, { "content-type": "application/json", prefer: "return=minimal" }),
        body: JSON.stringify({ display_name: `bench ${performance.now()}` }),
      }),
  },
];

async function runSql(op: Operation, user: string) {
  await api.begin(async (tx) => {
    await tx`select set_config('role', 'authenticated', true),
                    set_config('request.jwt.claims', ${
      JSON.stringify({ sub: user, role: "authenticated" })
    }, true)`;
    await op.sql(tx, user);
  });
}

async function runHttp(op: Operation, user: string, base?: string) {
  const request = op.http(user);
  const res = await fetch(
    base ? new Request(request.url.replace(`${API_URL}/rest/v1`, base), request) : request,
  );
  await res.arrayBuffer();
  if (!res.ok) throw new Error(`${op.name}: HTTP ${res.status}`);
}

type Stats = { p50: number; p95: number; p99: number; perSecond: number };
async function measure(
  run: (user: string) => Promise<void>,
  users: string[],
  concurrency: number,
): Promise<Stats> {
  // Warm-up at the same concurrency (so every pooled connection is open before timing), not counted.
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < 20 * concurrency) await run(users[next++ % users.length]);
  }));
  const latencies: number[] = [];
  next = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < RUNS) {
      const user = users[next++ % users.length];
      const t = performance.now();
      await run(user);
      latencies.push(performance.now() - t);
    }
  }));
  const elapsed = performance.now() - started;
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))];
  return { p50: at(0.5), p95: at(0.95), p99: at(0.99), perSecond: (latencies.length / elapsed) * 1000 };
}

// ------------------------------------------------------------------------------------------------- run
const ids = await load();
try {
  for (const id of ids) {
    tokens.set(id, await jwt.sign({ sub: id, role: "authenticated", aud: "authenticated", exp: 2e9 }));
  }
  const rows: string[] = [];
  const ms = (x: number) => x.toFixed(2);
  for (const concurrency of CONCURRENCY) {
    for (const op of operations) {
      progress(`${op.name}, c=${concurrency}`);
      const direct = await measure((u) => runSql(op, u), ids, concurrency);
      const service = await measure((u) => runHttp(op, u, REST_SERVICE_URL), ids, concurrency);
      const http = await measure((u) => runHttp(op, u), ids, concurrency);
      rows.push(
        `| ${op.name} | ${concurrency} | ${ms(direct.p50)} | ${ms(direct.p95)} | ${ms(direct.p99)} | ` +
          `${ms(service.p50)} | ${ms(service.p95)} | ` +
          `${ms(http.p50)} | ${ms(http.p95)} | ${ms(http.p99)} | ${(http.p50 / direct.p50).toFixed(1)}× | ` +
          `${Math.round(direct.perSecond)} | ${Math.round(http.perSecond)} |`,
      );
    }
  }
  console.log(
    `bench:db — ${USERS} users, ${USERS * LEDGER} ledger rows, ${USERS * USAGE} usage rows, ` +
      `${RUNS} runs per cell, ${new Date().toISOString().slice(0, 10)}\n`,
  );
  console.log(
    "| operation | c | SQL p50 ms | SQL p95 | SQL p99 | /rest/v1 p50 ms | p95 | p99 | HTTP ÷ SQL (p50) | SQL/s | HTTP/s |",
  );
  console.log("| --- | -: | -: | -: | -: | -: | -: | -: | -: | -: | -: |");
  for (const row of rows) console.log(row);
} finally {
  progress("deleting the benchmark's users");
  await admin`delete from auth.users where email like 'bench-%@example.com'`;
  await admin.end();
  await api.end();
}
