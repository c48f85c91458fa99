// The seed's as-audited design, for comparison in the same run: a scratch cluster (scripts/db/scratch.ts, durable
// like the stack's) with our migrations and seed and the same generated data, then our indexes and rollups taken
// away, so the same operations run on what the seed had; and the seed's chat design (chat-seed-design.ts, applied
// before the data is loaded). Exactly what it lacks (AUDITED_LACKS, printed with the table; CHAT_SEED_DESIGN with the
// chat table):
export const AUDITED_LACKS = [
  "every non-unique index of the tables the operations read (primary keys and unique constraints stay): " +
  "token_usage (user_id, created_at desc) and its other secondary indexes; purchased_employees' partial index " +
  "on active hires per user (seed §1.4) and its (employee_id, pinned_version) and last_used_at indexes; " +
  "ai_employees' GIN full-text and category indexes; employee_ratings' by-employee indexes; " +
  "employee_analytics_deltas' employee_id index",
  "the usage rollup: get_usage_summary adds up token_usage per day, provider and model instead of reading " +
  "usage_daily",
  "the analytics rollup: the listing's numbers are counted from the hires and ratings at every call " +
  "(private.live_employee_analytics is private.recompute_employee_analytics) instead of read from " +
  "employee_analytics plus unfolded deltas",
];
import postgres from "npm:postgres@3.4.9";
import { join } from "node:path";
import { applyMigrations, psql, ROOT, type ScratchDatabase, scratchDatabase } from "../../db/scratch.ts";
import { CHAT_SEED_DESIGN_SQL } from "./chat-seed-design.ts";
import { generate, type Loaded, type Scale } from "./generate.ts";
import { progress } from "./stack.ts";

export const AUDITED_TABLES = [
  "public.token_usage",
  "public.purchased_employees",
  "public.ai_employees",
  "public.employee_ratings",
  "private.employee_analytics_deltas",
];

/**
 * A scratch cluster with the schema, the seed, the seed's chat design and the generated data; not yet degraded (see
 * degrade()).
 */
export async function auditedCopy(
  scale: Scale,
  /** Called as soon as the cluster exists (so an interrupted run can remove it). */
  onCluster: (db: ScratchDatabase) => void = () => {},
): Promise<{ db: ScratchDatabase; loaded: Loaded }> {
  const t = performance.now();
  const db = await scratchDatabase("bench-audited", { durable: true });
  onCluster(db);
  try {
    await applyMigrations(db.url);
    await psql(db.url, { file: join(ROOT, "supabase", "seed.sql") });
    await psql(db.url, { sql: CHAT_SEED_DESIGN_SQL });
    progress(
      `as-audited: scratch cluster with migrations and seed (${
        ((performance.now() - t) / 1000).toFixed(1)
      } s)`,
    );
    const sql = postgres(db.url, { max: 2, onnotice: () => {} });
    try {
      return { db, loaded: await generate(sql, scale, "as-audited") };
    } finally {
      await sql.end();
    }
  } catch (e) {
    await db.stop();
    throw e;
  }
}

/** Takes our indexes and rollups away (AUDITED_LACKS). */
export async function degrade(url: string): Promise<string[]> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const dropped = (await sql`
      select format('%I.%I', n.nspname, c.relname) as name
        from pg_index i join pg_class c on c.oid = i.indexrelid join pg_namespace n on n.oid = c.relnamespace
       where i.indrelid = any(${AUDITED_TABLES}::regclass[]) and not i.indisunique and not i.indisprimary
       order by 1`).map((r) => r.name as string);
    for (const name of dropped) await sql.unsafe(`drop index ${name}`);
    await sql.unsafe(`
      create or replace function public.get_usage_summary(p_from date, p_to date)
      returns table (
        day date, provider text, model text, requests bigint, input_tokens bigint, cached_input_tokens bigint,
        output_tokens bigint, cost_micro_usd bigint
      )
      language sql stable security invoker set search_path = ''
      as $$
        select (t.created_at at time zone 'UTC')::date, t.provider, t.model, count(*)::bigint,
               sum(t.input_tokens)::bigint, sum(t.cached_input_tokens)::bigint, sum(t.output_tokens)::bigint,
               sum(coalesce(t.cost_micro_usd, 0))::bigint
          from public.token_usage t
         where t.user_id = (select auth.uid())
           and t.created_at >= p_from::timestamp at time zone 'UTC'
           and t.created_at < (p_to + 1)::timestamp at time zone 'UTC'
         group by 1, 2, 3
         order by 1, 2, 3
      $$`);
    await sql.unsafe(`
      create or replace function private.live_employee_analytics() returns setof public.employee_analytics
      language sql stable
      as $$ select * from private.recompute_employee_analytics() $$`);
    await sql`analyze`;
    return dropped;
  } finally {
    await sql.end();
  }
}
