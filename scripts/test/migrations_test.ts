// Guards on supabase/migrations that hold for every migration from now on:
//   names and versions, no duplicate version or content, a down script for each, and a round trip
//   (all ups → all downs in reverse → all ups) that leaves `pg_dump --schema-only` identical, with the
//   downs alone leaving exactly the platform bootstrap.
// The round trip runs on the local database itself (pg_cron only lives in cron.database_name) through the
// pinned Supabase CLI, and ends with the migrations and seed applied again.
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const MIGRATIONS = join(ROOT, "supabase", "migrations");
const DOWNS = join(MIGRATIONS, "down");
const DB_URL = Deno.env.get("DB_URL") ?? "postgresql://postgres:postgres@127.0.0.1:54322/postgres";
const PG_BIN = Deno.env.get("PG_BIN") ?? "/usr/lib/postgresql/15/bin";
const SUPABASE = join(ROOT, "node_modules", ".bin", "supabase");
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

const psqlFile = (url: string, file: string) =>
  run("psql", [url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction", "-f", file]);

/** The schema as pg_dump sees it, minus the CLI's own history table. */
async function dumpSchema(url: string): Promise<string> {
  const dump = await run(join(PG_BIN, "pg_dump"), [
    "--schema-only",
    "--exclude-schema=supabase_migrations",
    "--dbname",
    url,
  ]);
  // pg_dump 15.x prints a random \restrict key in newer point releases; drop volatile header lines.
  return dump.split("\n").filter((l) => !/^\\(un)?restrict /.test(l) && !l.startsWith("-- Dumped")).join(
    "\n",
  );
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
  const ups = await sqlFiles(MIGRATIONS, ".sql");
  const applied = await run("psql", [
    DB_URL,
    "-XAtq",
    "-c",
    "select count(*) from supabase_migrations.schema_migrations",
  ]);
  assert.equal(Number(applied.trim()), ups.length, "npm start applies every migration before the tests");

  // The reference for "all downs applied": a scratch database with only the platform bootstrap.
  const adminUrl = DB_URL.replace(/\/[^/]+$/, "/template1");
  const baselineUrl = DB_URL.replace(/\/[^/]+$/, "/migrations_baseline");
  await run("psql", [adminUrl, "-Xq", "-c", "drop database if exists migrations_baseline with (force)"]);
  await run("psql", [adminUrl, "-Xq", "-c", "create database migrations_baseline"]);
  let baseline: string;
  try {
    await run("psql", [baselineUrl, "-Xq", "-v", "ON_ERROR_STOP=1", "-f", "scripts/stack/bootstrap.sql"]);
    baseline = await dumpSchema(baselineUrl);
  } finally {
    await run("psql", [adminUrl, "-Xq", "-c", "drop database if exists migrations_baseline with (force)"]);
  }

  const before = await dumpSchema(DB_URL);
  for (const name of [...ups].reverse()) {
    await psqlFile(DB_URL, join(DOWNS, name.replace(/\.sql$/, ".down.sql")));
    await run(SUPABASE, [
      "migration",
      "repair",
      "--status",
      "reverted",
      name.slice(0, 14),
      "--db-url",
      DB_URL,
    ]);
  }
  const afterDowns = await dumpSchema(DB_URL);
  await run(SUPABASE, ["db", "push", "--db-url", DB_URL, "--include-seed", "--yes"]);
  const after = await dumpSchema(DB_URL);

  assert.ok(
    afterDowns === baseline,
    `downs leave more than the bootstrap: ${firstDifference(baseline, afterDowns)}`,
  );
  assert.ok(after === before, `ups again differ from the first ups: ${firstDifference(before, after)}`);
});
