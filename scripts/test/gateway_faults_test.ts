// The gateway loses no usage under faults, and never bills one twice: mid-traffic (ten users, streams and not),
// Postgres is stopped cleanly, crashed (SIGKILL of the postmaster: recovery from the WAL) and frozen (SIGSTOP),
// and the functions instance is stopped (SIGTERM, as a redeploy or scale-down does) while streams run. After
// recovery, every call the provider answered with 200 has exactly one usage row, the ledger equals the balance,
// nothing stays held, and while the database was away admission answered 503 within seconds instead of hanging.
//
// It runs on a stack of its own, so stopping its database disturbs no other test: a scratch Postgres cluster
// (scripts/db/scratch.ts) with every migration, a Redis and the Upstash REST endpoint in front of it, the fake
// providers, and a functions server (scripts/stack/functions-server.ts) pointed at all of them.
import assert from "node:assert/strict";
import { join } from "node:path";
import postgres from "npm:postgres@3.4.9";
import { startFakeLlm } from "../../supabase/functions/tests/_lib/fake-llm.ts";
import { hs256, userClaims } from "../../supabase/functions/tests/_lib/tokens.ts";
import { applyMigrations, psql, ROOT, scratchDatabase } from "../db/scratch.ts";

const DENO = join(ROOT, "node_modules", ".bin", "deno");
const KEYS_FILE = Deno.env.get("KEYS_FILE") ?? join(ROOT, ".stack", "keys.json");
const PG_BIN = Deno.env.get("PG_BIN") ?? "/usr/lib/postgresql/15/bin";
const USERS = 10;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function waitPort(port: number, what: string) {
  for (let i = 0; i < 200; i++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch {
      await sleep(50);
    }
  }
  throw new Error(`${what} did not come up on ${port}`);
}

type Stack = {
  db: Awaited<ReturnType<typeof scratchDatabase>>;
  dataDir: string;
  sql: postgres.Sql;
  apiUrl: string;
  functionsLog: string;
  stop(): Promise<void>;
};

/** The scratch cluster's data folder (pg_ctl needs it to stop and start the cluster). */
async function dataDirOf(url: string): Promise<string> {
  return (await psql(url, { sql: "show data_directory" })).trim();
}

const asPostgres = (cmd: string, args: string[]) =>
  Deno.uid?.() === 0
    ? new Deno.Command("runuser", { args: ["-u", "postgres", "--", cmd, ...args] })
    : new Deno.Command(cmd, { args });

async function pgCtl(dataDir: string, ...args: string[]) {
  const out = await asPostgres(join(PG_BIN, "pg_ctl"), ["-D", dataDir, ...args]).output();
  if (!out.success) throw new Error(`pg_ctl ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
}

async function startStack(fakeUrl: string): Promise<Stack> {
  // Durable, as the platform's: a crash must not lose a commit the gateway was told about.
  const db = await scratchDatabase("faults", { durable: true });
  await applyMigrations(db.url);
  const dataDir = await dataDirOf(db.url);
  const keys = JSON.parse(await Deno.readTextFile(KEYS_FILE));
  const tmp = await Deno.makeTempDir({ prefix: "aie-faults-" });
  const redisPort = freePort(), upstashPort = freePort(), apiPort = freePort();
  const redis = new Deno.Command("redis-server", {
    args: ["--bind", "127.0.0.1", "--port", String(redisPort), "--save", "", "--appendonly", "no"],
    stdout: "null",
    stderr: "null",
  }).spawn();
  await waitPort(redisPort, "redis");
  const upstash = new Deno.Command(DENO, {
    args: ["run", "--allow-all", "--quiet", join(ROOT, "scripts/stack/upstash-rest.ts")],
    env: {
      UPSTASH_PORT: String(upstashPort),
      REDIS_PORT: String(redisPort),
      UPSTASH_TOKEN: keys.upstash_token,
    },
    stdout: "null",
    stderr: "null",
  }).spawn();
  await waitPort(upstashPort, "upstash");
  const envFile = join(tmp, "functions.env");
  await Deno.writeTextFile(
    envFile,
    [
      "CORS_ALLOWED_ORIGINS=http://localhost:3000",
      "LOG_LEVEL=warn",
      ...["OPENAI", "ANTHROPIC", "GOOGLE", "PERPLEXITY"].map((p) => `${p}_API_KEY=fake-llm-test-key`),
      `OPENAI_BASE_URL=${fakeUrl}/v1`,
      `ANTHROPIC_BASE_URL=${fakeUrl}`,
      `GOOGLE_BASE_URL=${fakeUrl}`,
      `PERPLEXITY_BASE_URL=${fakeUrl}`,
      "UPSTREAM_HEADERS_TIMEOUT_MS=5000",
      "UPSTREAM_TIMEOUT_MS=30000",
      "",
    ].join("\n"),
  );
  const functionsLog = join(tmp, "functions.log");
  // Its log (the workers' lines too) goes to a file, as start.sh does it.
  const functions = new Deno.Command("bash", {
    args: [
      "-c",
      `exec "${DENO}" run --allow-all --quiet --unstable-no-legacy-abort "${
        join(ROOT, "scripts/stack/functions-server.ts")
      }" >>"${functionsLog}" 2>&1`,
    ],
    env: {
      API_PORT: String(apiPort),
      DB_URL: db.url,
      UPSTASH_URL: `http://127.0.0.1:${upstashPort}`,
      KEYS_FILE,
      FUNCTIONS_ENV_FILE: envFile,
    },
    stdout: "null",
    stderr: "null",
  }).spawn();
  await waitPort(apiPort, "functions server");
  const sql = postgres(db.url, { max: 4, prepare: false, onnotice: () => {}, connect_timeout: 5 });
  return {
    db,
    dataDir,
    sql,
    apiUrl: `http://127.0.0.1:${apiPort}`,
    functionsLog,
    async stop() {
      if (Deno.env.get("FAULTS_KEEP_LOG")) {
        await Deno.copyFile(functionsLog, Deno.env.get("FAULTS_KEEP_LOG")!).catch(() => {});
      }
      await sql.end({ timeout: 1 }).catch(() => {});
      for (const child of [functions, upstash, redis]) {
        try {
          child.kill("SIGTERM");
        } catch { /* gone */ }
        await child.status.catch(() => {});
      }
      await db.stop();
      await Deno.remove(tmp, { recursive: true }).catch(() => {});
    },
  };
}

type Traffic = { stop(): Promise<void>; results: { status: number; ms: number; stream: boolean }[] };

/** Ten users calling the OpenAI proxy back to back, streams and not, until stopped. */
function traffic(stack: Stack, tokens: string[]): Traffic {
  const results: Traffic["results"] = [];
  let running = true;
  const loops = tokens.map(async (token, i) => {
    let n = 0;
    while (running) {
      const stream = (n++ + i) % 2 === 0;
      const started = performance.now();
      try {
        const res = await fetch(`${stack.apiUrl}/functions/v1/openai-proxy/v1/chat/completions`, {
          method: "POST",
          headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
          body: JSON.stringify({
            model: "gpt-4o-mini",
            max_tokens: 64,
            stream,
            messages: [{ role: "user", content: `call ${i}-${n}` }],
          }),
          signal: AbortSignal.timeout(20_000),
        });
        await res.text().catch(() => "");
        results.push({ status: res.status, ms: performance.now() - started, stream });
      } catch {
        results.push({ status: 0, ms: performance.now() - started, stream });
      }
      await sleep(10);
    }
  });
  return {
    results,
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

async function withStack(
  fn: (stack: Stack, tokens: string[], fake: Awaited<ReturnType<typeof startFakeLlm>>) => Promise<void>,
) {
  await using fake = await startFakeLlm({
    port: 0,
    script: { inputTokens: 40, outputTokens: 20, chunks: 5 },
  });
  const stack = await startStack(fake.url);
  try {
    const tokens: string[] = [];
    for (let i = 0; i < USERS; i++) {
      const id = crypto.randomUUID();
      await stack
        .sql`insert into auth.users (id, aud, role, email) values (${id}, 'authenticated', 'authenticated',
                        ${`faults-${i}@example.com`})`;
      await stack.sql`update public.users set plan = 'max' where id = ${id}`;
      await stack.sql`select private.update_user_token_balance(${id}, 100000000, 'adjustment', ${
        "faults:" + id
      })`;
      tokens.push(await hs256(userClaims(id, `faults-${i}@example.com`)));
    }
    await fn(stack, tokens, fake);
  } finally {
    await stack.stop();
  }
}

/** Waits until at least `n` streams the provider answered 200 are still running (fails after 20 s). */
async function streamsInFlight(fake: Awaited<ReturnType<typeof startFakeLlm>>, n: number) {
  const deadline = Date.now() + 20_000;
  while (fake.calls.filter((c) => c.status === 200 && !c.completed && !c.aborted).length < n) {
    assert.ok(Date.now() < deadline, `${n} streams in flight before the fault`);
    await sleep(20);
  }
}

/** After recovery: every call the provider answered 200 has exactly one usage row; nothing lost, held or doubled. */
async function assertNothingLost(
  stack: Stack,
  fake: Awaited<ReturnType<typeof startFakeLlm>>,
  probeToken: string,
  what: string,
) {
  // The settlements still waiting go out (the Redis outbox is drained by the next settlement), then the outbox.
  const deadline = Date.now() + 30_000;
  let rows = 0, answered = 0;
  while (Date.now() < deadline) {
    // A call of its own: its settlement drains what the instance parked in Redis into the database outbox.
    const probe = await fetch(`${stack.apiUrl}/functions/v1/openai-proxy/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${probeToken}`, "content-type": "application/json" },
      body: JSON.stringify({
        model: "gpt-4o-mini",
        max_tokens: 8,
        messages: [{ role: "user", content: "probe" }],
      }),
    });
    await probe.text();
    await sleep(300);
    await stack.sql`select private.process_usage_outbox(1000)`;
    answered = fake.calls.filter((c) => c.status === 200).length;
    [{ n: rows }] = await stack.sql`select count(*)::int as n from public.token_usage`;
    const [{ n: parked }] = await stack
      .sql`select count(*)::int as n from private.usage_outbox where applied_at is null`;
    if (rows >= answered && parked === 0) break;
    await sleep(500);
  }
  assert.equal(rows, answered, `${what}: every call the provider answered 200 has its usage row`);
  const [dup] = await stack
    .sql`select count(*)::int as n from (select upstream_request_id from public.token_usage
                                  where upstream_request_id is not null group by 1 having count(*) > 1) d`;
  assert.equal(dup.n, 0, `${what}: no call billed twice`);
  const [ledger] = await stack.sql`
    select count(*)::int as n from public.token_balances b
     where b.balance <> (select coalesce(sum(t.delta), 0) from public.token_transactions t where t.user_id = b.user_id)`;
  assert.equal(ledger.n, 0, `${what}: the ledger equals the balance for every user`);
  const [usageRows] = await stack.sql`
    select count(*)::int as n from public.token_usage u
     where u.debited_tokens > 0
       and not exists (select 1 from public.token_transactions t where t.reference = 'usage:' || u.request_id)`;
  assert.equal(usageRows.n, 0, `${what}: every billed usage row has its one ledger row`);
  const [waiting] = await stack
    .sql`select count(*)::int as n from private.usage_outbox where applied_at is null`;
  assert.equal(waiting.n, 0, `${what}: nothing left in the outbox`);
}

for (const fault of ["stopped cleanly", "crashed", "frozen"] as const) {
  Deno.test({
    name: `gateway faults: Postgres ${fault} mid-traffic loses no served call and bills none twice`,
    sanitizeResources: false,
    sanitizeOps: false,
    async fn() {
      await withStack(async (stack, tokens, fake) => {
        // Streams of about a second: those running when the fault comes end during the outage, so their
        // settlements must take the fallback (a busy machine could otherwise leave none in flight at that moment).
        fake.setScript({ inputTokens: 40, outputTokens: 20, chunks: 5, chunkDelayMs: 200 });
        const load = traffic(stack, tokens);
        await sleep(1_500);
        await streamsInFlight(fake, 3);
        const before = load.results.length;
        const outageStart = load.results.length;
        if (fault === "frozen") {
          const pid = (await Deno.readTextFile(join(stack.dataDir, "postmaster.pid"))).split("\n")[0];
          // Every process of the cluster stops answering, connections stay open: the worst case for a client.
          await new Deno.Command("pkill", { args: ["-STOP", "-P", pid] }).output();
          await new Deno.Command("kill", { args: ["-STOP", pid] }).output();
          await sleep(6_000);
          await new Deno.Command("kill", { args: ["-CONT", pid] }).output();
          await new Deno.Command("pkill", { args: ["-CONT", "-P", pid] }).output();
        } else {
          if (fault === "crashed") {
            const pid = (await Deno.readTextFile(join(stack.dataDir, "postmaster.pid"))).split("\n")[0];
            await new Deno.Command("kill", { args: ["-KILL", pid] }).output();
            await new Deno.Command("pkill", { args: ["-KILL", "-P", pid] }).output();
            await sleep(200);
            await Deno.remove(join(stack.dataDir, "postmaster.pid")).catch(() => {});
          } else {
            await pgCtl(stack.dataDir, "-m", "fast", "-w", "stop");
          }
          await sleep(4_000);
          await pgCtl(
            stack.dataDir,
            "-l",
            join(stack.dataDir, "..", "postgres.log"),
            "-w",
            "-t",
            "60",
            "start",
          );
        }
        await sleep(3_000);
        await load.stop();
        const during = load.results.slice(outageStart);
        assert.ok(load.results.length > before, `${fault}: traffic went on`);
        // Admission never hung for the outage: every refused call answered within seconds.
        const slowest = Math.max(...during.filter((r) => r.status === 503).map((r) => r.ms), 0);
        assert.ok(slowest < 8_000, `${fault}: a 503 took ${Math.round(slowest)} ms`);
        assert.ok(
          during.every((r) => r.status === 200 || r.status === 503),
          `${fault}: only 200 and 503: ${JSON.stringify([...new Set(during.map((r) => r.status))])}`,
        );
        await assertNothingLost(stack, fake, tokens[0], `Postgres ${fault}`);
        const log = await Deno.readTextFile(stack.functionsLog);
        assert.ok(
          log.includes("usage record parked in redis"),
          `${fault}: settlements went to the Redis fallback`,
        );
      });
    },
  });
}

Deno.test({
  name:
    "gateway faults: an instance stopped (SIGTERM) mid-stream settles every call it was serving before it exits",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withStack(async (stack, tokens, fake) => {
      // Slow streams, so that many are in flight when the instance is told to stop.
      fake.setScript({ inputTokens: 40, outputTokens: 200, chunks: 20, chunkDelayMs: 100 });
      const load = traffic(stack, tokens);
      await sleep(1_500);
      const inFlight = fake.calls.filter((c) => c.status === 200 && !c.completed).length;
      assert.ok(inFlight > 0, "streams are running when the instance stops");
      const workers = new TextDecoder().decode(
        (await new Deno.Command("pgrep", { args: ["-f", "function-worker.ts .*openai-proxy/index.ts"] })
          .output()).stdout,
      ).trim().split("\n").filter(Boolean);
      // Only this stack's worker: the one whose parent is this stack's functions server.
      let stopped = 0;
      for (const pid of workers) {
        const env = await Deno.readTextFile(`/proc/${pid}/environ`).catch(() => "");
        if (env.includes(stack.db.url)) {
          await new Deno.Command("kill", { args: ["-TERM", pid] }).output();
          stopped++;
        }
      }
      assert.equal(stopped, 1, "this stack's openai-proxy worker got SIGTERM");
      await sleep(4_000); // the local runtime's grace is 3 s; the router starts a new worker for the next calls
      await load.stop();
      const cut = fake.calls.filter((c) => c.status === 200 && c.aborted).length;
      assert.ok(cut > 0, "streams were cut by the shutdown");
      await assertNothingLost(stack, fake, tokens[0], "instance stopped mid-stream");
      const [estimated] = await stack.sql`select count(*)::int as n from public.token_usage
                                           where status = 'cancelled' and tokens_estimated`;
      assert.ok(estimated.n >= cut, "the cut streams are billed what they delivered, flagged");
    });
  },
});
