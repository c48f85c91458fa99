// npm run usage:replay -- [file ...]   (or: … | npm run usage:replay)
//
// Applies the usage records the gateway could keep only in a log line (when neither the database nor Redis
// took them: KEPT_IN_LOG of _shared/gateway/settlement/redis-outbox.ts), each exactly once. Reads function logs
// from the files given, or from stdin: one JSON object per line, with or without a prefix before it (a
// timestamp, a log shipper's fields). Every record goes through private.gateway_settle, which settles a request
// id once: replaying the same logs again, or a record that did reach the database after all, changes nothing.
// Prints what it found and did, and exits non-zero if a record could not be applied.
//
// The database: SUPABASE_DB_URL, else DB_URL, else the local stack's.
import postgres from "npm:postgres@3.4.9";
import { KEPT_IN_LOG } from "../supabase/functions/_shared/gateway/settlement/redis-outbox.ts";

type Found = { record: Record<string, unknown>; line: number; source: string };

function recordsIn(text: string, source: string): Found[] {
  const found: Found[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const start = raw.indexOf("{");
    if (start < 0 || !raw.includes(KEPT_IN_LOG)) return;
    try {
      const entry = JSON.parse(raw.slice(start));
      const record = entry?.usage_record;
      if (
        entry?.msg === KEPT_IN_LOG && record && typeof record === "object" &&
        typeof record.request_id === "string"
      ) {
        found.push({ record, line: i + 1, source });
      }
    } catch { /* not a JSON log line */ }
  });
  return found;
}

async function readAll(): Promise<Found[]> {
  if (Deno.args.length === 0) {
    return recordsIn(await new Response(Deno.stdin.readable).text(), "stdin");
  }
  const found: Found[] = [];
  for (const file of Deno.args) found.push(...recordsIn(await Deno.readTextFile(file), file));
  return found;
}

const url = Deno.env.get("SUPABASE_DB_URL") ?? Deno.env.get("DB_URL") ??
  "postgresql://postgres:postgres@127.0.0.1:54322/postgres";
const sql = postgres(url, { max: 1, prepare: false, onnotice: () => {} });

const found = await readAll();
// One attempt per request id, however often it was logged.
const unique = new Map<string, Found>();
for (const f of found) {
  if (!unique.has(f.record.request_id as string)) unique.set(f.record.request_id as string, f);
}

let applied = 0, already = 0, failed = 0;
for (const { record, line, source } of unique.values()) {
  try {
    const [row] = await sql<{ settled_before: boolean }[]>`
      with before as (select exists (select 1 from public.token_usage where request_id = ${record
      .request_id as string})
                        as settled_before)
      select before.settled_before, (select request_id from private.gateway_settle(${
      JSON.stringify(record)
    }::text::jsonb))
        from before`;
    if (row.settled_before) already++;
    else applied++;
  } catch (e) {
    failed++;
    console.error(
      `${source}:${line}: request ${record.request_id}: ${e instanceof Error ? e.message : String(e)}`,
    );
  }
}
await sql.end();
console.log(
  `usage:replay: ${found.length} kept record(s) found (${unique.size} distinct): ${applied} applied, ` +
    `${already} already settled, ${failed} failed`,
);
if (failed > 0) Deno.exit(1);
