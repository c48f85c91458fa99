// pg_cron really runs the jobs, as on a hosted project: every job the migrations schedule is run by pg_cron
// itself (a copy of it, scheduled every minute for this test) and succeeds in cron.job_run_details, and no
// run of any job has failed while the other suites ran. pg_cron 1.4 schedules by the minute, so this waits
// up to about a minute: scripts/test/run.sh starts it in the background and collects it at the end.
import assert from "node:assert/strict";

const DB_URL = Deno.env.get("DB_URL") ?? "postgresql://postgres:postgres@127.0.0.1:54322/postgres";
/** When this file started: run.sh starts it after the migration round trip (which drops every job). */
const STARTED = new Date().toISOString();
const TIMEOUT_MS = 150_000;

async function sql(query: string): Promise<string> {
  const out = await new Deno.Command("psql", {
    args: [DB_URL, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", query],
  })
    .output();
  if (!out.success) throw new Error(`psql: ${new TextDecoder().decode(out.stderr)}`);
  return new TextDecoder().decode(out.stdout).trim();
}

const rows = async (query: string) => (await sql(query)).split("\n").filter(Boolean).map((l) => l.split("|"));

Deno.test("pg_cron runs every scheduled job's command and each run succeeds", async () => {
  const jobs = await rows(
    `select jobname, command from cron.job where jobname like 'aie\\_%' and jobname not like 'aie\\_test\\_%' order by 1`,
  );
  assert.ok(jobs.length >= 6, `the migrations schedule the platform's jobs (found ${jobs.length})`);
  const copies = jobs.map(([name]) => `aie_test_${name.slice(4)}`);
  try {
    for (const [name] of jobs) {
      await sql(`select cron.schedule('aie_test_${name.slice(4)}', '* * * * *',
                   (select command from cron.job where jobname = '${name}'))`);
    }
    const deadline = Date.now() + TIMEOUT_MS;
    let done: string[][] = [];
    while (Date.now() < deadline) {
      done = await rows(`
        select j.jobname, d.status, coalesce(d.return_message, '')
          from cron.job j
          join lateral (select * from cron.job_run_details r where r.jobid = j.jobid
                         order by r.runid desc limit 1) d on true
         where j.jobname like 'aie\\_test\\_%' and d.status in ('succeeded', 'failed')`);
      if (done.length === copies.length) break;
      await new Promise((r) => setTimeout(r, 2000));
    }
    assert.deepEqual(
      done.map((
        [name, status, message],
      ) => [name, status === "succeeded" ? "succeeded" : `${status}: ${message}`])
        .sort(),
      copies.map((name) => [name, "succeeded"]).sort(),
      "every job's command, run by pg_cron, succeeds",
    );
  } finally {
    await sql(`select cron.unschedule(jobid) from cron.job where jobname like 'aie\\_test\\_%'`);
  }
});

Deno.test("no run of a scheduled job has failed while the tests ran", async () => {
  const failed = await rows(`
    select j.jobname, d.status, d.return_message from cron.job_run_details d left join cron.job j using (jobid)
     where d.start_time >= '${STARTED}' and d.status not in ('succeeded', 'running', 'starting', 'sending', 'connecting')`);
  assert.deepEqual(failed, []);
  const [[count]] = await rows(`select count(*) from cron.job_run_details where start_time >= '${STARTED}'`);
  assert.ok(Number(count) > 0, "pg_cron ran jobs while the suite ran");
});
