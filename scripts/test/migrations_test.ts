// Guards on supabase/migrations that hold for every migration from now on:
//   names and versions, no duplicate version or content, a down script for each, and a round trip
//   (all ups → all downs in reverse → all ups) that leaves `pg_dump --schema-only` identical, with the
//   downs alone leaving exactly the platform bootstrap.
// The round trip runs on a scratch cluster of its own (pg_cron lives in one database per cluster).
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { applyMigrations, dumpSchema, psql, scratchDatabase } from "../db/scratch.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const MIGRATIONS = join(ROOT, "supabase", "migrations");
const DOWNS = join(MIGRATIONS, "down");
const DB_URL = Deno.env.get("DB_URL") ?? "postgresql://postgres:postgres@127.0.0.1:54322/postgres";
const NAME = /^(\d{14})_([a-z0-9_]+)\.sql$/;

async function sqlFiles(dir: string, suffix: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) if (e.isFile && e.name.endsWith(suffix)) names.push(e.name);
  return names.sort();
}

async function run(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, cwd: ROOT, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")} failed:\n${new TextDecoder().decode(out.stderr)}`);
  }
  return text;
}

function firstDifference(a: string, b: string): string {
  const la = a.split("\n"), lb = b.split("\n");
  for (let i = 0; i < Math.max(la.length, lb.length); i++) {
    if (la[i] !== lb[i]) return `line ${i + 1}:\n- ${la[i]}\n+ ${lb[i]}`;
  }
  return "(none)";
}

Deno.test("every migration is named <14-digit version>_<snake_case>.sql", async () => {
  const bad = (await sqlFiles(MIGRATIONS, ".sql")).filter((n) => !NAME.test(n));
  assert.deepEqual(bad, []);
});

Deno.test("no two migrations share a version", async () => {
  const versions = (await sqlFiles(MIGRATIONS, ".sql")).map((n) => n.slice(0, 14));
  const dups = versions.filter((v, i) => versions.indexOf(v) !== i);
  assert.deepEqual(dups, []);
});

Deno.test("no two migrations have the same content", async () => {
  const seen = new Map<string, string>();
  const dups: string[] = [];
  for (const name of await sqlFiles(MIGRATIONS, ".sql")) {
    const text = (await Deno.readTextFile(join(MIGRATIONS, name))).replace(/\s+/g, " ").trim();
    const digest = Array.from(
      new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text))),
      (b) => b.toString(16).padStart(2, "0"),
    ).join("");
    if (seen.has(digest)) dups.push(`${seen.get(digest)} = ${name}`);
    seen.set(digest, name);
  }
  assert.deepEqual(dups, []);
});

Deno.test("every migration has a down script and every down script a migration", async () => {
  const ups = (await sqlFiles(MIGRATIONS, ".sql")).map((n) => n.replace(/\.sql$/, ""));
  const downs = (await sqlFiles(DOWNS, ".down.sql")).map((n) => n.replace(/\.down\.sql$/, ""));
  assert.deepEqual(ups.filter((u) => !downs.includes(u)), [], "migrations without a down script");
  assert.deepEqual(downs.filter((d) => !ups.includes(d)), [], "down scripts without a migration");
});

Deno.test("ups, downs in reverse and ups again leave the schema identical", async () => {
  // On a scratch cluster of its own (scripts/db/scratch.ts), with the seed's data in it: the live database keeps
  // whatever the other suites left (debts, history), which a down script of a later feature cannot always hold.
  await using db = await scratchDatabase("roundtrip");
  const baseline = await dumpSchema(db.url);
  const ups = await applyMigrations(db.url);
  await psql(db.url, { file: join(ROOT, "supabase", "seed.sql") });
  const before = await dumpSchema(db.url);
  for (const name of [...ups].reverse()) {
    await psql(db.url, { file: join(DOWNS, name.replace(/\.sql$/, ".down.sql")) });
  }
  const afterDowns = await dumpSchema(db.url);
  await applyMigrations(db.url);
  const after = await dumpSchema(db.url);

  assert.ok(
    afterDowns === baseline,
    `downs leave more than the bootstrap: ${firstDifference(baseline, afterDowns)}`,
  );
  assert.ok(after === before, `ups again differ from the first ups: ${firstDifference(before, after)}`);
});

Deno.test("npm start applied every migration to the stack's database", async () => {
  const ups = await sqlFiles(MIGRATIONS, ".sql");
  const applied = await run("psql", [
    DB_URL,
    "-XAtq",
    "-c",
    "select count(*) from supabase_migrations.schema_migrations",
  ]);
  assert.equal(Number(applied.trim()), ups.length);
});
