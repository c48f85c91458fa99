// Scratch Postgres clusters for schema work (diffs, down scripts, drift and cut-over tests): each is a
// project-local cluster of its own (initdb in a temporary folder, a free port, pg_cron preloaded with
// cron.database_name = postgres, since pg_cron lives in one database per cluster), with the platform bootstrap
// (scripts/stack/bootstrap.sql) applied, exactly like the stack's database before its first migration.
//
//   await using db = await scratchDatabase("from");   // db.url: postgresql://postgres:postgres@127.0.0.1:<port>/postgres
//   await applyMigrations(db.url, { upTo: "20261201100000" });
//
// As root, the cluster runs as the postgres OS user (initdb refuses root), as the stack's does.
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const PG_BIN = Deno.env.get("PG_BIN") ?? "/usr/lib/postgresql/15/bin";
export const MIGRATIONS = join(ROOT, "supabase", "migrations");
const PASSWORD = "postgres";

const isRoot = () => Deno.uid?.() === 0;

async function run(
  cmd: string,
  args: string[],
  opts: { asPostgres?: boolean; stdin?: string; env?: Record<string, string> } = {},
) {
  const [bin, argv] = opts.asPostgres && isRoot()
    ? ["runuser", ["-u", "postgres", "--", cmd, ...args]]
    : [cmd, args];
  const child = new Deno.Command(bin, {
    args: argv,
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    stdin: opts.stdin === undefined ? "null" : "piped",
    env: opts.env,
  }).spawn();
  if (opts.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(opts.stdin));
    await writer.close();
  }
  const out = await child.output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    const shown = args.filter((a) => !a.startsWith("postgresql://")).join(" ");
    throw new Error(
      `${cmd} ${shown.length > 300 ? shown.slice(0, 300) + " …" : shown} failed:\n${
        new TextDecoder().decode(out.stderr)
      }${text}`,
    );
  }
  return text;
}

/**
 * psql with ON_ERROR_STOP; a file (or several, in order) runs in one transaction, as `supabase db push` applies a
 * migration. `options`: server settings for the session (PGOPTIONS), e.g. `-c check_function_bodies=off`.
 */
export async function psql(
  url: string,
  input: { file?: string; files?: string[]; sql?: string; options?: string },
): Promise<string> {
  const args = [url, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"];
  const env = input.options ? { PGOPTIONS: input.options } : undefined;
  const files = input.files ?? (input.file ? [input.file] : []);
  if (files.length) {
    return await run("psql", [...args, "--single-transaction", ...files.flatMap((f) => ["-f", f])], { env });
  }
  return await run("psql", [...args, "-c", input.sql!], { env });
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

export type ScratchDatabase = AsyncDisposable & { url: string; port: number; stop(): Promise<void> };

/**
 * A new cluster with the platform bootstrap applied; stop() (or `await using`) removes it. `durable`: commits are
 * fsynced as on the platform (for tests that crash it); otherwise not, since a schema scratch holds nothing.
 */
export async function scratchDatabase(
  label = "scratch",
  opts: { durable?: boolean } = {},
): Promise<ScratchDatabase> {
  const dir = await Deno.makeTempDir({ prefix: `aie-db-${label}-` });
  const data = join(dir, "data"),
    run_ = join(dir, "run"),
    log = join(dir, "postgres.log"),
    pw = join(dir, "pw");
  await Deno.mkdir(data);
  await Deno.mkdir(run_);
  await Deno.writeTextFile(pw, PASSWORD);
  await Deno.writeTextFile(log, "");
  if (isRoot()) {
    await Deno.chmod(dir, 0o755);
    await run("chown", ["-R", "postgres:postgres", dir]);
  }
  await run(join(PG_BIN, "initdb"), [
    "-D",
    data,
    "-U",
    "postgres",
    `--pwfile=${pw}`,
    "--auth-local=trust",
    "--auth-host=scram-sha-256",
    "-E",
    "UTF8",
    "--locale=C.UTF-8",
  ], { asPostgres: true });
  const port = freePort();
  const durability = opts.durable ? "on" : "off";
  await Deno.writeTextFile(
    join(data, "postgresql.conf"),
    `
listen_addresses = '127.0.0.1'
port = ${port}
unix_socket_directories = '${run_}'
shared_preload_libraries = 'pg_cron'
cron.database_name = 'postgres'
cron.use_background_workers = on
max_worker_processes = 16
timezone = 'UTC'
fsync = ${durability}
synchronous_commit = ${durability}
full_page_writes = ${durability}
`,
    { append: true },
  );
  await run(join(PG_BIN, "pg_ctl"), ["-D", data, "-l", log, "-w", "-t", "60", "start"], { asPostgres: true });
  const url = `postgresql://postgres:${PASSWORD}@127.0.0.1:${port}/postgres`;
  const stop = async () => {
    await run(join(PG_BIN, "pg_ctl"), ["-D", data, "-m", "immediate", "-w", "stop"], { asPostgres: true })
      .catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    await psql(url, { file: join(ROOT, "scripts", "stack", "bootstrap.sql") });
  } catch (e) {
    await stop();
    throw e;
  }
  return { url, port, stop, [Symbol.asyncDispose]: stop };
}

/** The migration files, in order: `<version>_<name>.sql`. */
export async function migrationFiles(): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(MIGRATIONS)) if (e.isFile && e.name.endsWith(".sql")) names.push(e.name);
  return names.sort();
}

/**
 * Applies the migrations (from `from` on, up to and including `upTo`, or before `before`), each in its own
 * transaction.
 */
export async function applyMigrations(
  url: string,
  opts: { from?: string; upTo?: string; before?: string } = {},
): Promise<string[]> {
  const applied: string[] = [];
  for (const name of await migrationFiles()) {
    const version = name.slice(0, 14);
    if (opts.from && version < opts.from) continue;
    if (opts.upTo && version > opts.upTo) break;
    if (opts.before && version >= opts.before) break;
    await psql(url, { file: join(MIGRATIONS, name) });
    applied.push(name);
  }
  return applied;
}

/** The schema as pg_dump prints it, without the lines that change from one dump to the next. */
export async function dumpSchema(
  url: string,
  excludeSchemas: string[] = ["supabase_migrations"],
): Promise<string> {
  const dump = await run(join(PG_BIN, "pg_dump"), [
    "--schema-only",
    ...excludeSchemas.map((s) => `--exclude-schema=${s}`),
    "--dbname",
    url,
  ]);
  return dump.split("\n").filter((l) => !/^\\(un)?restrict /.test(l) && !l.startsWith("-- Dumped")).join(
    "\n",
  );
}

/** The pinned CLI's pg-delta diff from one database to another: the SQL that turns `from` into `to`. */
export async function pgDeltaDiff(from: string, to: string): Promise<string> {
  const out = join(await Deno.makeTempDir({ prefix: "aie-diff-" }), "diff.sql");
  await run(join(ROOT, "node_modules", ".bin", "supabase"), [
    "db",
    "diff",
    "--use-pg-delta",
    "--from",
    `${from}?sslmode=disable`,
    "--to",
    `${to}?sslmode=disable`,
    "-o",
    out,
  ]);
  const sql = await Deno.readTextFile(out).catch(() => "");
  await Deno.remove(out).catch(() => {});
  return sql;
}
