// Drift between the declared schema (supabase/schemas) and the migrations: two scratch clusters, one built each
// way, compared with pg-delta (the SQL that would turn one into the other) and with `pg_dump --schema-only`.
// Used by npm run db:diff and by the drift guard (scripts/test/schema_guards_test.ts).
import { applySchemas } from "./schemas.ts";
import {
  applyMigrations,
  dumpSchema,
  pgDeltaDiff,
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

export type SchemaDrift = AsyncDisposable & {
  /** Bootstrap + every migration. */
  migrated: ScratchDatabase;
  /** Bootstrap + the declared schema. */
  declared: ScratchDatabase;
  /** pg-delta's SQL from the migrated schema to the declared one ("" when none). */
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
      pgDeltaDiff(migrated.url, declared.url),
      dumpSchema(migrated.url),
      dumpSchema(declared.url),
    ]);
    const up = isEmptyDiff(diff) ? "" : diff;
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
