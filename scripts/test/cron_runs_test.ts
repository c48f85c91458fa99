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

// The agent-run sweep, proved by pg_cron itself: a run whose worker was last heard from 10 minutes ago (of a throwaway
// user, on a seeded employee) is expired by aie_agent_runs_expire's own next run. It is inserted when this file loads,
// so the wait overlaps the first test's (both wait for the same minute tick).
const SWEEP_USER = crypto.randomUUID();
const SWEEP_INSERTED = (await sql(`
  begin;
  insert into auth.users (id, aud, role, email, email_confirmed_at, raw_app_meta_data, raw_user_meta_data)
  values ('${SWEEP_USER}', 'authenticated', 'authenticated', 'cron-sweep-${SWEEP_USER}@example.com', now(),
          '{"provider":"email"}', '{}');
  select set_config('request.jwt.claims', json_build_object('sub', '${SWEEP_USER}', 'role', 'authenticated')::text, true);
  set local role authenticated;
  create temporary table sweep_hire on commit drop as
    select id from public.hire_employee((select slug from public.ai_employees where status = 'available' order by slug limit 1));
  reset role;
  create temporary table sweep_run on commit drop as
    select run_id from private.start_agent_run('${SWEEP_USER}', null, (select id from sweep_hire), 'Still there?', null,
                                               null, null, 8, 1000, 1000);
  update public.agent_runs set heartbeat_at = now() - interval '10 minutes' where id = (select run_id from sweep_run);
  commit;
  select clock_timestamp();`)).split("\n").at(-1);

Deno.test("pg_cron's aie_agent_runs_expire expires a run whose heartbeat is stale", async () => {
  try {
    const deadline = Date.now() + 75_000;
    let run: string[] = [];
    while (Date.now() < deadline) {
      [run] = await rows(
        `select status, error_code, ended_at from public.agent_runs where user_id = '${SWEEP_USER}'`,
      );
      if (run?.[0] !== "in_progress" && run?.[0] !== "queued") break;
      await new Promise((r) => setTimeout(r, 2000));
    }
    assert.deepEqual(run.slice(0, 2), ["expired", "worker_lost"], "the stale run is expired by the sweep");
    // The sweep's ended_at is its transaction's start, within moments of the start_time pg_cron records.
    const [[byCron]] = await rows(`
      select count(*) from cron.job_run_details d join cron.job j using (jobid)
       where j.jobname = 'aie_agent_runs_expire' and d.status = 'succeeded' and d.start_time >= '${SWEEP_INSERTED}'
         and abs(extract(epoch from d.start_time - '${run[2]}'::timestamptz)) < 5`);
    assert.equal(
      byCron,
      "1",
      `by a run of aie_agent_runs_expire that pg_cron started then (the run ended ${run[2]})`,
    );
    assert.deepEqual(
      await rows(`select m.status, m.error_code from public.agent_runs r join public.chat_messages m
                   on m.id = r.assistant_message_id where r.user_id = '${SWEEP_USER}'`),
      [["failed", "run_expired"]],
      "its answer is a failed message: run_expired",
    );
    assert.deepEqual(
      await rows(
        `select e.type from public.agent_run_events e where e.user_id = '${SWEEP_USER}' order by e.sequence_number`,
      ),
      [["run.expired"], ["done"]],
      "and replaying clients are told it is over",
    );
  } finally {
    await sql(`delete from auth.users where id = '${SWEEP_USER}'`);
  }
});
