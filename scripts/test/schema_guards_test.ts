// Guards of schema as code (supabase/schemas is the source of truth; migrations, downs and types are generated):
//   drift         a database built from supabase/schemas and one built from supabase/migrations do not differ
//                 (pg-delta finds nothing to do, `pg_dump --schema-only` identical)
//   layout        every schema file is applied (config.toml's schema_paths names it); every table, view and
//                 function has exactly one declaring file, named after it
//   immutability  every migration and down matches its committed SHA-256 (supabase/migrations.sha256)
//   generated     every down script is generated; database.types.ts is what npm run db:types writes
import assert from "node:assert/strict";
import { basename, join, relative } from "node:path";
import { type SchemaDrift, schemaDrift } from "../db/drift.ts";
import { schemaFiles, unlistedSchemaFiles } from "../db/schemas.ts";
import { psql, ROOT } from "../db/scratch.ts";
import { CHECKSUMS, recordedChecksums, sealedFiles, sha256 } from "../db/seal.ts";
import { generateTypes, TYPES_FILE } from "../db/types.ts";

let drift: Promise<SchemaDrift> | undefined;
const built = () => drift ??= schemaDrift();

Deno.test("a database built from supabase/schemas is the one the migrations build (pg-delta, pg_dump)", async () => {
  const d = await built();
  assert.equal(d.up, "", `pg-delta would change the migrated schema into the declared one:\n${d.up}`);
  assert.equal(d.firstDumpDifference, "(none)", `pg_dump --schema-only differs (- migrations, + schemas)`);
  assert.ok(d.clean);
});

Deno.test("database.types.ts is what npm run db:types generates from the declared schema", async () => {
  const d = await built();
  const [expected, committed] = await Promise.all([
    generateTypes(d.declared.url),
    Deno.readTextFile(TYPES_FILE),
  ]);
  assert.ok(committed === expected, `${relative(ROOT, TYPES_FILE)} is stale: run npm run db:types`);
});

Deno.test("every table, view, type and function is declared in exactly one file, named after it", async () => {
  const d = await built();
  const objects = (await psql(
    d.declared.url,
    {
      sql: `select kind || ' ' || name from (
              select case c.relkind when 'v' then 'view' else 'table' end as kind, n.nspname || '.' || c.relname as name
                from pg_class c join pg_namespace n on n.oid = c.relnamespace
               where n.nspname in ('public', 'private') and c.relkind in ('r', 'p', 'v')
              union all
              select 'type', n.nspname || '.' || t.typname
                from pg_type t join pg_namespace n on n.oid = t.typnamespace
               where n.nspname in ('public', 'private')
                 and (t.typtype = 'e' or (t.typtype = 'c' and (select c.relkind from pg_class c where c.oid = t.typrelid) = 'c'))
              union all
              select case when p.prorettype = 'trigger'::regtype then 'trigger' else 'function' end,
                     n.nspname || '.' || p.proname
                from pg_proc p join pg_namespace n on n.oid = p.pronamespace
               where n.nspname in ('public', 'private')) o order by 1`,
    },
  )).trim().split("\n");
  const files = await schemaFiles();
  const texts = new Map(await Promise.all(files.map(async (f) => [f, await Deno.readTextFile(f)] as const)));
  const problems: string[] = [];
  for (const object of objects) {
    const [kind, name] = object.split(" ");
    const declaration = kind === "table"
      ? new RegExp(`^create (unlogged )?table ${name.replace(".", "\\.")} \\(`, "m")
      : kind === "view"
      ? new RegExp(`^create or replace view ${name.replace(".", "\\.")} as`, "m")
      : kind === "type"
      ? new RegExp(`^create type ${name.replace(".", "\\.")} as`, "m")
      : new RegExp(`^create or replace function ${name.replace(".", "\\.")}\\(`, "m");
    const declaring = files.filter((f) => declaration.test(texts.get(f)!));
    const folder =
      { table: "tables", view: "views", type: "types", function: "functions", trigger: "triggers" }[kind];
    const expected = `${folder}/${name}.sql`;
    if (declaring.length !== 1 || !declaring[0].endsWith(expected)) {
      problems.push(
        `${object}: declared in ${declaring.map((f) => relative(ROOT, f)).join(", ") || "no file"}; ` +
          `expected one file, …/${expected}`,
      );
    }
  }
  assert.deepEqual(problems, []);
});

Deno.test("every file under supabase/schemas is applied: schema_paths names it", async () => {
  assert.deepEqual(await unlistedSchemaFiles(), []);
});

Deno.test("a landed migration never changes: every migration and down matches its committed checksum", async () => {
  const recorded = await recordedChecksums();
  const changed: string[] = [];
  const unsealed: string[] = [];
  for (const file of await sealedFiles()) {
    const digest = recorded.get(file);
    if (digest === undefined) unsealed.push(file);
    else if (digest !== await sha256(file)) changed.push(file);
  }
  assert.deepEqual(
    changed,
    [],
    "landed migrations never change: put the change in supabase/schemas and run npm run db:diff -- <name>",
  );
  assert.deepEqual(
    unsealed,
    [],
    `not in ${
      basename(CHECKSUMS)
    }: npm run db:diff records what it writes; after editing a new migration's data ` +
      "section, npm run db:seal -- <version>",
  );
  const listed = [...recorded.keys()];
  const existing = new Set(await sealedFiles());
  assert.deepEqual(
    listed.filter((f) => !existing.has(f)),
    [],
    `${basename(CHECKSUMS)} lists files that are gone`,
  );
});

// Downs that landed hand-written before downs were generated: landed files never change, so they stay as they
// landed (the round trip proves they still revert their migrations).
const LANDED_HAND_WRITTEN_DOWNS = new Set([
  "migrations/down/20261125160000_foundation.down.sql",
  "migrations/down/20261125160100_identity.down.sql",
  "migrations/down/20261125170000_scheduling.down.sql",
  "migrations/down/20261125170100_rate_limits.down.sql",
]);

Deno.test("every down script is generated (npm run db:down or npm run db:diff), none written by hand", async () => {
  const handWritten: string[] = [];
  for (const file of await sealedFiles()) {
    if (!file.includes("/down/") || LANDED_HAND_WRITTEN_DOWNS.has(file)) continue;
    const text = await Deno.readTextFile(join(ROOT, "supabase", file));
    if (!/^-- Reverts \S+\.sql\. Generated by npm run db:(down|diff)/.test(text)) handWritten.push(file);
  }
  assert.deepEqual(handWritten, []);
});

Deno.test("schema guards teardown", async () => {
  if (drift) await (await drift)[Symbol.asyncDispose]();
});
