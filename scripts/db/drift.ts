// Drift between the declared schema (supabase/schemas) and the migrations: two scratch clusters, one built each
// way, compared with pg-delta (the SQL that would turn one into the other) and with `pg_dump --schema-only`.
// Used by npm run db:diff and by the drift guard (scripts/test/schema_guards_test.ts).
import { applySchemas } from "./schemas.ts";
import {
  applyMigrations,
  dumpSchema,
  pgDeltaDiff,
  psql,
  type ScratchDatabase,
  scratchDatabase,
} from "./scratch.ts";

/** pg-delta's output when there is nothing to do: at most its session settings. */
export function isEmptyDiff(sql: string): boolean {
  return sql.split("\n").every((l) => !l.trim() || /^SET (local )?[a-z_]+ = [a-z0-9_']+;$/i.test(l.trim()));
}

export function firstDifference(a: string, b: string): string {
  const la = a.split("\n"), lb = b.split("\n");
  for (let i = 0; i < Math.max(la.length, lb.length); i++) {
    if (la[i] !== lb[i]) return `line ${i + 1}:\n- ${la[i]}\n+ ${lb[i]}`;
  }
  return "(none)";
}

/** Comments on the attributes of composite types ("schema.type.attribute" → comment): pg-delta does not diff them. */
async function typeAttributeComments(url: string): Promise<Map<string, string | null>> {
  const json = await psql(url, {
    sql:
      `select coalesce(json_object_agg(format('%I.%I.%I', n.nspname, t.typname, a.attname), d.description), '{}')
            from pg_type t
            join pg_namespace n on n.oid = t.typnamespace
            join pg_class c on c.oid = t.typrelid and c.relkind = 'c'
            join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
            left join pg_description d on d.objoid = c.oid and d.classoid = 'pg_class'::regclass
                                      and d.objsubid = a.attnum
           where n.nspname in ('public', 'private')`,
  });
  return new Map(Object.entries(JSON.parse(json.trim()) as Record<string, string | null>));
}

const quote = (text: string) => `'${text.replaceAll("'", "''")}'`;

/**
 * The SQL that turns the schema at `from` into the one at `to`: pg-delta's diff, and what it leaves out (comments
 * on composite type attributes), appended.
 */
export async function schemaDiff(from: string, to: string): Promise<string> {
  const [delta, before, after] = await Promise.all([
    pgDeltaDiff(from, to),
    typeAttributeComments(from),
    typeAttributeComments(to),
  ]);
  const comments = [...after]
    .filter(([attribute, comment]) => (before.get(attribute) ?? null) !== comment)
    .map(([attribute, comment]) =>
      `COMMENT ON COLUMN ${attribute} IS ${comment === null ? "NULL" : quote(comment)};`
    );
  const sql = isEmptyDiff(delta) ? "" : delta.trim();
  if (comments.length === 0) return sql;
  return `${sql}\n\n-- Comments on composite type attributes (pg-delta does not diff them; added by scripts/db/drift.ts).\n${
    comments.join("\n")
  }\n`;
}

export type SchemaDrift = AsyncDisposable & {
  /** Bootstrap + every migration. */
  migrated: ScratchDatabase;
  /** Bootstrap + the declared schema. */
  declared: ScratchDatabase;
  /** The SQL from the migrated schema to the declared one (schemaDiff; "" when none). */
  up: string;
  /** The first line where the two schema dumps differ, or "(none)". */
  firstDumpDifference: string;
  /** No difference either way. */
  clean: boolean;
};

export async function schemaDrift(): Promise<SchemaDrift> {
  const [migrated, declared] = await Promise.all([scratchDatabase("migrated"), scratchDatabase("declared")]);
  const dispose = async () => void await Promise.all([migrated.stop(), declared.stop()]);
  try {
    await Promise.all([applyMigrations(migrated.url), applySchemas(declared.url)]);
    const [diff, dumpMigrated, dumpDeclared] = await Promise.all([
      schemaDiff(migrated.url, declared.url),
      dumpSchema(migrated.url),
      dumpSchema(declared.url),
    ]);
    const up = diff;
    const firstDumpDifference = firstDifference(dumpMigrated, dumpDeclared);
    return {
      migrated,
      declared,
      up,
      firstDumpDifference,
      clean: up === "" && dumpMigrated === dumpDeclared,
      [Symbol.asyncDispose]: dispose,
    };
  } catch (e) {
    await dispose();
    throw e;
  }
}
