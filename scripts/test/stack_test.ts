// The local stack's commands do what the README says: status prints the keys, every migration shows as
// applied in the CLI's own history, and db:reset works twice in a row.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const DB_URL = Deno.env.get("DB_URL") ?? "postgresql://postgres:postgres@127.0.0.1:54322/postgres";

async function run(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, cwd: ROOT, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  return text;
}
const sql = async (query: string) => (await run("psql", [DB_URL, "-XAtq", "-c", query])).trim();

async function migrationVersions(): Promise<string[]> {
  const versions: string[] = [];
  for await (const e of Deno.readDir(`${ROOT}/supabase/migrations`)) {
    if (e.isFile && e.name.endsWith(".sql")) versions.push(e.name.slice(0, 14));
  }
  return versions.sort();
}

Deno.test("npm run status -- -o env prints the URLs and keys as KEY=value lines", async () => {
  const out = await run("npm", ["run", "-s", "status", "--", "-o", "env"]);
  const env = Object.fromEntries(
    out.trim().split("\n").map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
  );
  assert.equal(env.API_URL, "http://127.0.0.1:54321");
  assert.equal(env.DB_URL, DB_URL);
  assert.match(env.JWT_SECRET, /^[0-9a-f]{64}$/);
  for (const key of ["ANON_KEY", "SERVICE_ROLE_KEY"]) {
    const [, payload] = env[key].split(".");
    const claims = JSON.parse(atob(payload.replace(/-/g, "+").replace(/_/g, "/")));
    assert.equal(claims.role, key === "ANON_KEY" ? "anon" : "service_role");
  }
});

Deno.test("supabase migration list shows every migration applied", async () => {
  const out = await run(`${ROOT}/node_modules/.bin/supabase`, ["migration", "list", "--db-url", DB_URL]);
  for (const version of await migrationVersions()) {
    assert.match(
      out,
      new RegExp(`${version}\\S*\\s*\\|\\s*\\S*${version}`),
      `${version} not applied:\n${out}`,
    );
  }
});

Deno.test("npm run db:reset works twice in a row and leaves migrations, seed and pg_cron in place", async () => {
  await sql("create table public.left_over_from_before_reset (id int)");
  for (let i = 0; i < 2; i++) await run("npm", ["run", "-s", "db:reset"]);
  assert.equal(await sql("select to_regclass('public.left_over_from_before_reset') is null"), "t");
  assert.equal(
    await sql("select count(*) from supabase_migrations.schema_migrations"),
    String((await migrationVersions()).length),
  );
  assert.equal(
    await sql("select email from public.users where email = 'demo@example.com'"),
    "demo@example.com",
  );
  // pg_cron's scheduler lives in the database; it must come back after the database is recreated.
  let launcher = "0";
  for (let i = 0; i < 50 && launcher === "0"; i++) {
    launcher = await sql("select count(*) from pg_stat_activity where backend_type = 'pg_cron launcher'");
    if (launcher === "0") await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(launcher, "1");
});

Deno.test("npm run status lists every pg_cron job with its schedule and last run", async () => {
  const out = await run("npm", ["run", "-s", "status"]);
  const jobs = (await sql("select jobname || '|' || schedule from cron.job order by 1")).split("\n");
  assert.ok(jobs.length >= 6);
  for (const job of jobs) {
    const [name, schedule] = job.split("|");
    assert.match(out, new RegExp(`${name}\\s*\\|\\s*${schedule.replace(/[*/]/g, "\\$&")}\\s*\\|`), out);
  }
});

Deno.test("the stack's database commits durably, as a hosted one does", async () => {
  for (const setting of ["fsync", "synchronous_commit", "full_page_writes"]) {
    assert.equal(await sql(`show ${setting}`), "on", setting);
  }
  assert.equal(await sql("show cron.use_background_workers"), "on");
});
