#!/usr/bin/env node
// npm run bench:gateway — what the LLM gateway (supabase/functions/_shared/gateway) costs per request, in one
// run, against one fake OpenAI upstream, next to the upstream called directly and Portkey's open-source
// gateway. A benchmark script, never a test: it asserts nothing and only reports (DESIGN.md §4).
//
//   direct          the fake upstream itself (tests/_lib/fake-llm.ts), the reference
//   ours (router)   POST <functions>/openai-proxy/v1/chat/completions with a real user token: auth, admission
//                   SQL (plan, price, balance lock, hold), Upstash rpm + tpm limits, forward, settle
//                   (metering) after the answer; through the local functions server, as clients call it
//   ours (worker)   the same request sent straight to the function's worker process, without the router hop
//                   (the local functions server plays the platform's router, which is not ours to tune)
//   Portkey         @portkey-ai/gateway as its own Node process, forwarding to the same fake through
//                   x-portkey-provider / x-portkey-custom-host; it does no auth, limits or metering
//
// What it starts (all on free 127.0.0.1 ports, all stopped at the end, on Ctrl-C and on failure): the fake
// upstream, a functions server of its own whose env points OpenAI at that fake, Portkey (twice: stock for the
// non-streaming runs, and with scripts/bench/portkey-stream-fix.mjs for streaming, which stock 1.15.2 cannot
// serve on Node). What it creates in the database: an inactive plan `bench_<hex>` with huge limits and
// users on it with a large balance; deleted at the end with everything that cascades from them (usage rows,
// ledger, holds). The stack itself (Postgres, Redis, Upstash endpoint) is the one `npm start` runs; it is
// started if it is down.
//
// Measures: autocannon at each BENCH_CONNECTIONS (after a warm-up) for BENCH_DURATION seconds, non-streaming;
// p50/p95/p99 from every response's latency; req/s of 200s; every status is counted and anything but 200 is
// reported; the CPU time every process on the machine spent per request, by role (/proc). Then time to first
// byte of `stream: true` over BENCH_TTFB_REQUESTS sequential requests. Then a step-by-step profile of our
// pipeline (scripts/bench/gateway-profile.ts) and the server-side time of the admission and settlement SQL
// during the runs (pg_stat_statements deltas). The report (Markdown) goes to stdout, progress to stderr.
//
// env (all optional):
//   BENCH_DURATION=10            seconds measured per target and concurrency
//   BENCH_WARMUP=2               seconds of warm-up before each measurement (not counted)
//   BENCH_CONNECTIONS=1,50       concurrency levels
//   BENCH_TTFB_REQUESTS=200      sequential streaming requests per target (0: skip)
//   BENCH_MANY_USERS=1           also run ours at the highest concurrency with one user per connection (0: skip)
//   BENCH_PROFILE_ITERATIONS=300 sequential iterations of the step profile (0: skip)
//   BENCH_JWT_ALG=ES256          ES256 (asymmetric signing keys, what hosted projects use now) or HS256
//   BENCH_DB_POOL_MAX=           DB_POOL_MAX for the benchmark's functions (default: the functions' own, 5)
//   BENCH_LIMITS=upstash         upstash: rpm/tpm counted in Upstash (the stack's default); postgres: no Upstash
//                                for the benchmark's functions, so the admission SQL counts them (p_check_limits)
//   BENCH_TARGETS=direct,router,worker,portkey   which rows to measure (direct is always measured)
//   BENCH_KEEP_LOGS=1            keep the temp folder with every process's log
//   BENCH_AGENTS=1               the agent rows (scripts/bench/agents.mjs): step overhead and prompt cache share
//                                (0: skip)
//   BENCH_AGENT_STEPS=1,2,4,8    model steps per run of the overhead rows
//   BENCH_AGENT_RUNS=30          measured runs per step count and concurrency (after BENCH_AGENT_WARMUP=2)
//   BENCH_AGENT_CONCURRENCY=4    the concurrent overhead rows (beside c=1)
//   BENCH_CACHE_TURNS=10         user messages of each prompt-cache conversation
import autocannon from "autocannon";
import { execFileSync, spawn } from "node:child_process";
import { Buffer } from "node:buffer";
import { createHmac, createPrivateKey, randomBytes, randomUUID, sign } from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import process from "node:process";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import {
  agentEmployees,
  agentReport,
  benchAgentOverhead,
  benchPromptCache,
  cleanupAgents,
  setupAgents,
} from "./agents.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const STACK_DIR = process.env.STACK_DIR ?? path.join(ROOT, ".stack");
const KEYS_FILE = path.join(STACK_DIR, "keys.json");
const DENO = path.join(ROOT, "node_modules/.bin/deno");
const PORTKEY_DIR = path.join(ROOT, "node_modules/@portkey-ai/gateway");
const FAKE_KEY = "fake-llm-test-key";
const MODEL = "gpt-4o-mini";

const num = (name, fallback) => {
  const v = process.env[name];
  if (v === undefined || v === "") return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number`);
  return n;
};
const CFG = {
  duration: num("BENCH_DURATION", 10),
  warmup: num("BENCH_WARMUP", 2),
  connections: (process.env.BENCH_CONNECTIONS ?? "1,50").split(",").map((s) => Number(s.trim())).filter((n) =>
    n >= 1
  ),
  ttfbRequests: num("BENCH_TTFB_REQUESTS", 200),
  manyUsers: num("BENCH_MANY_USERS", 1) > 0,
  profileIterations: num("BENCH_PROFILE_ITERATIONS", 300),
  jwtAlg: (process.env.BENCH_JWT_ALG ?? "ES256").toUpperCase(),
  dbPoolMax: process.env.BENCH_DB_POOL_MAX ?? "",
  limits: (process.env.BENCH_LIMITS ?? "upstash").toLowerCase(),
  targets: (process.env.BENCH_TARGETS ?? "direct,router,worker,portkey").split(",").map((s) => s.trim()),
  keepLogs: process.env.BENCH_KEEP_LOGS === "1",
  agents: num("BENCH_AGENTS", 1) > 0,
  agentSteps: (process.env.BENCH_AGENT_STEPS ?? "1,2,4,8").split(",").map((s) => Number(s.trim())).filter((
    n,
  ) => Number.isInteger(n) && n >= 1 && n <= 16),
  agentRuns: num("BENCH_AGENT_RUNS", 30),
  agentWarmup: num("BENCH_AGENT_WARMUP", 2),
  agentConcurrency: Math.max(1, num("BENCH_AGENT_CONCURRENCY", 4)),
  cacheTurns: num("BENCH_CACHE_TURNS", 10),
};
if (!["ES256", "HS256"].includes(CFG.jwtAlg)) throw new Error("BENCH_JWT_ALG must be ES256 or HS256");
if (!["upstash", "postgres"].includes(CFG.limits)) {
  throw new Error("BENCH_LIMITS must be upstash or postgres");
}
const maxConnections = Math.max(...CFG.connections);

const say = (msg) => process.stderr.write(`[bench] ${msg}\n`);

// ------------------------------------------------------------------------------------------ processes
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), "bench-gateway-"));
/** @type {{name: string, child: import("node:child_process").ChildProcess, log: string}[]} */
const procs = [];

function start(name, command, args, env) {
  const log = path.join(TMP, `${name}.log`);
  const fd = fs.openSync(log, "a");
  // Own process group: the functions server's workers are stopped with it, and a terminal's Ctrl-C reaches
  // only this script, which stops them in order.
  const child = spawn(command, args, { cwd: ROOT, env, stdio: ["ignore", fd, fd], detached: true });
  fs.closeSync(fd);
  const proc = { name, child, log, exited: false };
  child.on("exit", () => proc.exited = true);
  procs.push(proc);
  return proc;
}

function signalGroup(proc, signal) {
  try {
    process.kill(-proc.child.pid, signal);
  } catch { /* gone */ }
}

async function stop(proc) {
  if (proc.exited) return;
  signalGroup(proc, "SIGTERM");
  for (let i = 0; i < 30 && !proc.exited; i++) await sleep(100);
  signalGroup(proc, "SIGKILL"); // the group: workers that outlived their server too
}

async function freePort() {
  return await new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function waitPort(proc, port, timeoutMs = 60_000) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (proc.exited) throw new Error(`${proc.name} exited while starting:\n${tail(proc.log)}`);
    const ok = await new Promise((resolve) => {
      const s = net.connect(port, "127.0.0.1");
      s.once("connect", () => {
        s.destroy();
        resolve(true);
      });
      s.once("error", () => resolve(false));
    });
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`${proc.name} did not listen on ${port} within ${timeoutMs} ms:\n${tail(proc.log)}`);
}

const tail = (file, lines = 30) => {
  try {
    return fs.readFileSync(file, "utf8").split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
};

/** The port a child process of `parentPid` listens on (the function worker of our functions server). */
function workerPortOf(parentPid) {
  const children = fs.readdirSync("/proc").filter((d) => /^\d+$/.test(d)).filter((pid) => {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
      return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === parentPid;
    } catch {
      return false;
    }
  });
  const listening = new Map(); // socket inode → port
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text = "";
    try {
      text = fs.readFileSync(file, "utf8");
    } catch { /* no ipv6 */ }
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length > 9 && f[3] === "0A") listening.set(f[9], parseInt(f[1].split(":")[1], 16));
    }
  }
  const ports = [];
  for (const pid of children) {
    let fds = [];
    try {
      fds = fs.readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m && listening.has(m[1])) ports.push(listening.get(m[1]));
      } catch { /* closed meanwhile */ }
    }
  }
  return ports;
}

// -------------------------------------------------------------------------------------------- database
let DB_URL = "";
function psql(sql) {
  return execFileSync("psql", [DB_URL, "-v", "ON_ERROR_STOP=1", "-qAtX", "-c", sql], {
    encoding: "utf8",
    env: { ...process.env, PGCONNECT_TIMEOUT: "5" },
    stdio: ["ignore", "pipe", "pipe"],
  }).trim();
}
const sqlList = (ids) => `array[${ids.map((id) => `'${id}'`).join(",")}]::uuid[]`;

const PLAN = `bench_${randomBytes(4).toString("hex")}`;
const mainUser = randomUUID();
const manyUsers = CFG.manyUsers ? Array.from({ length: maxConnections }, () => randomUUID()) : [];
// Agent runs are limited to 30 a minute per user: the overhead runs go round a pool of users.
const agentUsers = CFG.agents ? Array.from({ length: 32 }, () => randomUUID()) : [];
const AGENT_TAG = randomBytes(4).toString("hex");
const agentEmployeeList = CFG.agents ? agentEmployees(AGENT_TAG) : [];
const cacheUsers = agentEmployeeList.filter((e) => e.cache).map(() => randomUUID());
const allUsers = [mainUser, ...manyUsers, ...agentUsers, ...cacheUsers];
let agentSetup = null;
let dbCreated = false;

function createBenchData() {
  // Leftovers of runs that were killed outright (older than an hour, so never a concurrent run's).
  psql(`
    delete from auth.users u using public.users p, public.subscription_plans s
     where p.id = u.id and s.id = p.plan and s.id like 'bench\\_%' and not s.is_active
       and s.created_at < now() - interval '1 hour';
    delete from public.subscription_plans s where s.id like 'bench\\_%' and not s.is_active
       and s.created_at < now() - interval '1 hour'
       and not exists (select 1 from public.users u where u.plan = s.id);`);
  dbCreated = true;
  psql(`
    begin;
    insert into public.subscription_plans
      (id, name, description, monthly_token_allowance, requests_per_minute, tokens_per_minute, max_output_tokens,
       is_active, sort_order)
    values ('${PLAN}', 'Benchmark', 'Temporary plan of npm run bench:gateway; deleted when the run ends', 0,
            1000000000, 2000000000, 1024, false, 1000);
    insert into auth.users (id, aud, role, email, email_confirmed_at, raw_user_meta_data)
    select id, 'authenticated', 'authenticated', 'bench-' || id || '@example.invalid', now(), '{}'
      from unnest(${sqlList(allUsers)}) id;
    update public.users set plan = '${PLAN}' where id = any(${sqlList(allUsers)});
    select private.update_user_token_balance(p_user_id => id, p_delta => 1000000000000, p_reason => 'adjustment',
                                             p_reference => 'bench:' || id)
      from unnest(${sqlList(allUsers)}) id;
    commit;`);
}

function deleteBenchData() {
  if (!dbCreated) return;
  psql(`
    delete from private.usage_outbox where payload ->> 'user_id' = any(${sqlList(allUsers)}::text[]);
    delete from auth.users where id = any(${sqlList(allUsers)});
    delete from public.subscription_plans where id = '${PLAN}';`);
  if (agentSetup) cleanupAgents(psql, agentSetup.category);
  dbCreated = false;
}

const heldCalls = () =>
  Number(psql(`select count(*) from private.token_holds where user_id = any(${sqlList(allUsers)})`));
const usageRows = (ids) =>
  Number(psql(`select count(*) from public.token_usage where user_id = any(${sqlList(ids)})`));

/**
 * Waits until every admitted call of the bench users is settled and their leases given back (a lease goes back
 * after the gateway's idle time, admission/); returns how long that took.
 */
async function settled(timeoutMs = 30_000) {
  const started = Date.now();
  while (heldCalls() > 0) {
    if (Date.now() - started > timeoutMs) return null;
    await sleep(50);
  }
  return Date.now() - started;
}

function sqlStats() {
  const rows = psql(`
    select case when query like '%gateway_lease(%' then 'lease' else 'settle' end, sum(calls), sum(total_exec_time)
      from pg_stat_statements
     where query like '%private.gateway_lease(%' or query like '%private.gateway_batch_settle(%'
     group by 1`);
  const out = { lease: { calls: 0, ms: 0 }, settle: { calls: 0, ms: 0 } };
  for (const line of rows.split("\n").filter(Boolean)) {
    const [k, calls, ms] = line.split("|");
    out[k] = { calls: Number(calls), ms: Number(ms) };
  }
  return out;
}
const sqlDelta = (a, b) =>
  Object.fromEntries(["lease", "settle"].map((k) => {
    const calls = b[k].calls - a[k].calls;
    return [k, { calls, meanMs: calls > 0 ? (b[k].ms - a[k].ms) / calls : null }];
  }));

// ------------------------------------------------------------------------------------------- CPU time
// CPU time of every process on the machine (/proc/<pid>/stat utime + stime), grouped by role, so a run can
// say how many CPU milliseconds each part spends per request. Threads are included; a process that exited
// during the run is missed (none of ours do).
let CLK_TCK = 100;
try {
  CLK_TCK = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
} catch { /* the usual 100 */ }
const ROLES = [
  "load generator",
  "fake upstream",
  "router",
  "worker",
  "Portkey",
  "Postgres",
  "Upstash endpoint",
  "Redis",
  "other",
];
const roleOf = { pids: new Map(), functionsPid: 0 };
const pidFile = (name) => {
  try {
    return Number(fs.readFileSync(path.join(STACK_DIR, name), "utf8").trim());
  } catch {
    return 0;
  }
};

function cpuSnapshot() {
  const snap = new Map();
  for (const d of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, "utf8");
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      snap.set(Number(d), { ppid: Number(f[1]), comm, ticks: Number(f[11]) + Number(f[12]) });
    } catch { /* gone */ }
  }
  return snap;
}

function classify(pid, info) {
  const known = roleOf.pids.get(pid);
  if (known) return known;
  if (pid === process.pid) return "load generator";
  if (roleOf.functionsPid && info.ppid === roleOf.functionsPid) return "worker";
  if (info.comm === "postgres") return "Postgres";
  if (info.comm.startsWith("redis-server") || pid === pidFile("redis.pid")) return "Redis";
  if (pid === pidFile("upstash.pid")) return "Upstash endpoint";
  return "other";
}

/** CPU milliseconds per role between two snapshots. */
function cpuDelta(a, b) {
  const out = Object.fromEntries(ROLES.map((r) => [r, 0]));
  for (const [pid, info] of b) {
    const ticks = info.ticks - (a.get(pid)?.ticks ?? 0);
    if (ticks > 0) out[classify(pid, info)] += (ticks * 1000) / CLK_TCK;
  }
  return out;
}

// ------------------------------------------------------------------------------------------------ JWT
const b64url = (x) => Buffer.from(x).toString("base64url");
function userToken(keys, sub, apiUrl) {
  const now = Math.floor(Date.now() / 1000);
  const claims = {
    sub,
    email: `bench-${sub}@example.invalid`,
    role: "authenticated",
    aud: "authenticated",
    iss: `${apiUrl}/auth/v1`,
    iat: now,
    exp: now + 3600,
  };
  const header = CFG.jwtAlg === "HS256"
    ? { alg: "HS256", typ: "JWT" }
    : { alg: "ES256", typ: "JWT", kid: keys.signing_jwk.kid };
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  const signature = CFG.jwtAlg === "HS256"
    ? createHmac("sha256", keys.jwt_secret).update(input).digest()
    : sign("sha256", Buffer.from(input), {
      key: createPrivateKey({ key: keys.signing_jwk, format: "jwk" }),
      dsaEncoding: "ieee-p1363",
    });
  return `${input}.${b64url(signature)}`;
}

// ----------------------------------------------------------------------------------------- measuring
const BODY = JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "Say hello." }] });
const STREAM_BODY = JSON.stringify({
  model: MODEL,
  stream: true,
  messages: [{ role: "user", content: "Say hello." }],
});

const pct = (sorted, p) =>
  sorted.length
    ? sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]
    : NaN;
const summary = (samples) => {
  const s = Float64Array.from(samples).sort();
  return { n: s.length, p50: pct(s, 50), p95: pct(s, 95), p99: pct(s, 99) };
};

/** One request, to check that a target answers 200 with a completion before it is measured. */
async function probe(target) {
  const res = await fetch(target.url, { method: "POST", headers: target.headers, body: BODY });
  const text = await res.text();
  let ok = res.status === 200;
  try {
    ok &&= Array.isArray(JSON.parse(text).choices);
  } catch {
    ok = false;
  }
  if (!ok) throw new Error(`${target.name}: probe answered ${res.status}: ${text.slice(0, 500)}`);
}

function cannon(target, connections, duration, tokens) {
  return new Promise((resolve, reject) => {
    const latencies = [];
    const statuses = {};
    let next = 0;
    const instance = autocannon({
      url: target.url,
      method: "POST",
      headers: target.headers,
      body: BODY,
      connections,
      pipelining: 1,
      duration,
      timeout: 10,
      // One user per connection when tokens are given.
      setupClient: tokens
        ? (client) =>
          client.setHeaders({ ...target.headers, authorization: `Bearer ${tokens[next++ % tokens.length]}` })
        : undefined,
    }, (err, result) => {
      if (err) reject(err);
      else resolve({ result, latencies, statuses });
    });
    instance.on("response", (_client, status, _bytes, ms) => {
      statuses[status] = (statuses[status] ?? 0) + 1;
      latencies.push(ms);
    });
  });
}

async function measure(target, connections, tokens) {
  if (CFG.warmup > 0) {
    const warm = await cannon(target, connections, CFG.warmup, tokens);
    const bad = Object.entries(warm.statuses).filter(([s]) => s !== "200");
    if (bad.length) {
      say(`warning: ${target.name} c=${connections} warm-up statuses ${JSON.stringify(warm.statuses)}`);
    }
  }
  const cpuBefore = cpuSnapshot();
  const { result, latencies, statuses } = await cannon(target, connections, CFG.duration, tokens);
  const cpu = cpuDelta(cpuBefore, cpuSnapshot());
  const ok = statuses[200] ?? 0;
  const total = Object.values(statuses).reduce((a, b) => a + b, 0);
  return {
    ...summary(latencies),
    rps: ok / result.duration,
    seconds: result.duration,
    cpu,
    ok,
    bad: total - ok,
    errors: result.errors,
    timeouts: result.timeouts,
    statuses,
  };
}

/** Time to first byte of `stream: true`: headers, first body chunk, whole stream; sequential requests. */
async function ttfb(target, n) {
  const headers = [];
  const first = [];
  const whole = [];
  let bad = 0;
  const statuses = {};
  const warm = Math.min(20, Math.ceil(n / 10));
  for (let i = 0; i < warm + n; i++) {
    const t0 = performance.now();
    const res = await fetch(target.url, { method: "POST", headers: target.headers, body: STREAM_BODY });
    const t1 = performance.now();
    let t2 = null;
    let text = "";
    const decoder = new TextDecoder();
    for await (const chunk of res.body) {
      if (t2 === null && chunk.length) t2 = performance.now();
      text += decoder.decode(chunk, { stream: true });
    }
    const t3 = performance.now();
    const good = res.status === 200 &&
      (res.headers.get("content-type") ?? "").includes("text/event-stream") &&
      text.includes("data: [DONE]") && text.includes('"finish_reason":"stop"');
    if (i < warm) continue;
    statuses[res.status] = (statuses[res.status] ?? 0) + 1;
    if (!good) {
      bad++;
      if (bad === 1) say(`warning: ${target.name} stream answered ${res.status}: ${text.slice(0, 300)}`);
      continue;
    }
    headers.push(t1 - t0);
    first.push(t2 - t0);
    whole.push(t3 - t0);
  }
  return { headers: summary(headers), first: summary(first), whole: summary(whole), bad, statuses };
}

// ------------------------------------------------------------------------------------------------ run
function stackEnv() {
  const out = execFileSync("bash", [path.join(ROOT, "scripts/stack/status.sh"), "-o", "env"], {
    encoding: "utf8",
  });
  return Object.fromEntries(
    out.split("\n").filter((l) => l.includes("=")).map((l) => {
      const i = l.indexOf("=");
      return [l.slice(0, i), l.slice(i + 1)];
    }),
  );
}

function ensureStack() {
  let line = "";
  try {
    line = execFileSync("bash", [path.join(ROOT, "scripts/stack/status.sh")], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    }).split("\n")[0];
  } catch { /* never started */ }
  if (/running postgres, running redis, running upstash/.test(line) && fs.existsSync(DENO)) return;
  say("the stack is not (fully) running: npm start");
  execFileSync("bash", [path.join(ROOT, "scripts/stack/start.sh")], {
    stdio: ["ignore", "ignore", "inherit"],
  });
}

const baseEnv = () => {
  const env = { DENO_NO_UPDATE_CHECK: "1" };
  for (const k of ["PATH", "HOME", "DENO_DIR", "TZ", "LANG"]) {
    if (process.env[k] !== undefined) env[k] = process.env[k];
  }
  return env;
};

const denoVersion = () => execFileSync(DENO, ["-v"], { encoding: "utf8" }).trim().replace(/^deno /, "");
const fmt = (x, d = 2) => (x === null || x === undefined || Number.isNaN(x) ? "–" : x.toFixed(d));
const results = { load: [], ttfb: [], profile: null, sql: {}, settleDrainMs: {}, notes: [] };

async function main() {
  say(`temp folder: ${TMP}`);
  ensureStack();
  const env = stackEnv();
  DB_URL = env.DB_URL;
  const keys = JSON.parse(fs.readFileSync(KEYS_FILE, "utf8"));
  const loadStart = os.loadavg();

  const [fakePort, fnPort, pkPort, pkStreamPort, controlPort] = await Promise.all([
    freePort(),
    freePort(),
    freePort(),
    freePort(),
    freePort(),
  ]);
  const fakeBase = `http://127.0.0.1:${fakePort}/v1`;

  // 1. The fake upstream, alone in its process (calls are not recorded: flat memory), with the agent runs' scripts
  // (scripts/bench/agents-fake.ts; requests without tools get the fake's standing answer, as before).
  const fake = start("fake-llm", DENO, [
    "run",
    "--allow-net",
    "--quiet",
    "scripts/bench/agents-fake.ts",
    "--port",
    String(fakePort),
    "--control-port",
    String(controlPort),
  ], baseEnv());

  // 2. A functions server of our own, as start.sh starts the stack's, with OpenAI pointed at the fake.
  const envFile = path.join(TMP, "functions.env");
  fs.writeFileSync(
    envFile,
    [
      "CORS_ALLOWED_ORIGINS=http://localhost:3000",
      `OPENAI_API_KEY=${FAKE_KEY}`,
      `OPENAI_BASE_URL=${fakeBase}`,
      ...["ANTHROPIC", "GOOGLE", "PERPLEXITY"].flatMap((p) => [
        `${p}_API_KEY=${FAKE_KEY}`,
        `${p}_BASE_URL=http://127.0.0.1:${fakePort}`,
      ]),
      ...(CFG.dbPoolMax ? [`DB_POOL_MAX=${CFG.dbPoolMax}`] : []),
      // Empty values win over the stack's Upstash endpoint: the gateway then counts limits in the admission SQL.
      ...(CFG.limits === "postgres" ? ["UPSTASH_REDIS_REST_URL=", "UPSTASH_REDIS_REST_TOKEN="] : []),
      "",
    ].join("\n"),
  );
  const functionsServer = (name, port, file) =>
    start(
      name,
      DENO,
      ["run", "--allow-all", "--quiet", "--unstable-no-legacy-abort", "scripts/stack/functions-server.ts"],
      {
        ...baseEnv(),
        API_PORT: String(port),
        DB_URL: env.DB_URL,
        UPSTASH_URL: env.UPSTASH_REDIS_REST_URL,
        KEYS_FILE,
        FUNCTIONS_ENV_FILE: file,
      },
    );
  const functions = functionsServer("functions-server", fnPort, envFile);

  // 3. Portkey: stock for the load runs; with the streaming fix (see portkey-stream-fix.mjs) for TTFB.
  const pkEnv = { PATH: process.env.PATH, HOME: process.env.HOME };
  const portkey = start("portkey", process.execPath, [
    path.join(PORTKEY_DIR, "build/start-server.js"),
    `--port=${pkPort}`,
    "--headless",
  ], pkEnv);
  const portkeyStream = CFG.ttfbRequests > 0
    ? start("portkey-stream", process.execPath, [
      "--import",
      path.join(ROOT, "scripts/bench/portkey-stream-fix.mjs"),
      path.join(PORTKEY_DIR, "build/start-server.js"),
      `--port=${pkStreamPort}`,
      "--headless",
    ], pkEnv)
    : null;

  roleOf.pids.set(fake.child.pid, "fake upstream");
  roleOf.pids.set(functions.child.pid, "router");
  roleOf.functionsPid = functions.child.pid;
  roleOf.pids.set(portkey.child.pid, "Portkey");
  if (portkeyStream) roleOf.pids.set(portkeyStream.child.pid, "Portkey");

  createBenchData();
  if (CFG.agents) agentSetup = setupAgents(psql, AGENT_TAG, agentEmployeeList, agentUsers, cacheUsers);
  await Promise.all([
    waitPort(fake, fakePort),
    waitPort(functions, fnPort),
    waitPort(portkey, pkPort),
    portkeyStream && waitPort(portkeyStream, pkStreamPort),
  ]);

  const apiUrl = `http://127.0.0.1:${fnPort}`;
  const token = userToken(keys, mainUser, apiUrl);
  const manyTokens = manyUsers.map((id) => userToken(keys, id, apiUrl));
  const json = { "content-type": "application/json" };
  const targets = {
    direct: {
      name: "direct (fake upstream)",
      url: `${fakeBase}/chat/completions`,
      headers: { ...json, authorization: `Bearer ${FAKE_KEY}` },
    },
    router: {
      name: "ours (router → worker)",
      url: `${apiUrl}/functions/v1/openai-proxy/v1/chat/completions`,
      headers: { ...json, authorization: `Bearer ${token}` },
    },
    worker: { name: "ours (worker only)", url: "", headers: { ...json, authorization: `Bearer ${token}` } },
    portkey: {
      name: "Portkey",
      url: `http://127.0.0.1:${pkPort}/v1/chat/completions`,
      headers: {
        ...json,
        authorization: `Bearer ${FAKE_KEY}`,
        "x-portkey-provider": "openai",
        "x-portkey-custom-host": fakeBase,
      },
    },
  };
  const portkeyStreamTarget = {
    ...targets.portkey,
    name: "Portkey (stream fix)",
    url: `http://127.0.0.1:${pkStreamPort}/v1/chat/completions`,
  };

  // The router starts the worker on the first request; then find the worker's own port.
  const want = (k) => k === "direct" || CFG.targets.includes(k);
  await probe(targets.direct);
  await probe(targets.router);
  if (want("portkey")) await probe(targets.portkey);
  const findWorker = async () => {
    for (const port of workerPortOf(functions.child.pid)) {
      const url = `http://127.0.0.1:${port}/openai-proxy/v1/chat/completions`;
      try {
        await probe({ ...targets.worker, url });
        return url;
      } catch { /* another socket */ }
    }
    return "";
  };
  if (want("worker")) {
    targets.worker.url = await findWorker();
    if (!targets.worker.url) {
      results.notes.push("the function worker's port was not found: no worker-only rows");
    }
  }
  await settled();

  const plan = [];
  for (const c of CFG.connections) {
    plan.push([targets.direct, c]);
    if (want("router")) plan.push([targets.router, c]);
    if (targets.worker.url) plan.push([targets.worker, c]);
    if (want("portkey")) plan.push([targets.portkey, c]);
  }
  const durationTotal = (plan.length + (CFG.manyUsers ? 1 : 0)) * (CFG.duration + CFG.warmup);
  say(`measuring ${plan.length} runs of ${CFG.warmup}+${CFG.duration} s (~${Math.round(durationTotal)} s)`);
  for (const [target, c] of plan) {
    if (target === targets.worker) {
      // A change under supabase/functions/ restarts the worker on a new port: look it up again.
      const url = await findWorker();
      if (url) target.url = url;
    }
    const ours = target === targets.router || target === targets.worker;
    const before = ours ? sqlStats() : null;
    const r = await measure(target, c);
    const sqlAfter = ours ? sqlStats() : null;
    if (ours) {
      results.settleDrainMs[`${target.name} c=${c}`] = await settled();
      results.sql[`${target.name} c=${c}`] = sqlDelta(before, sqlAfter);
    }
    results.load.push({ target: target.name, c, ...r });
    say(
      `${target.name.padEnd(24)} c=${String(c).padEnd(3)} p50 ${fmt(r.p50)} ms  p99 ${fmt(r.p99)} ms  ${
        fmt(r.rps, 0)
      } req/s  non-200 ${r.bad}`,
    );
  }
  if (CFG.manyUsers) {
    const name = `ours (router), ${manyUsers.length} users`;
    const before = sqlStats();
    const r = await measure({ ...targets.router, name }, maxConnections, manyTokens);
    const after = sqlStats();
    results.settleDrainMs[`${name} c=${maxConnections}`] = await settled();
    results.sql[`${name} c=${maxConnections}`] = sqlDelta(before, after);
    results.load.push({ target: name, c: maxConnections, ...r });
    say(
      `${name.padEnd(24)} c=${maxConnections} p50 ${fmt(r.p50)} ms  ${fmt(r.rps, 0)} req/s  non-200 ${r.bad}`,
    );
  }

  if (CFG.ttfbRequests > 0) {
    say(`streaming TTFB: ${CFG.ttfbRequests} sequential requests per target`);
    for (const target of [targets.direct, targets.router, targets.worker, portkeyStreamTarget]) {
      if (!target.url || (target === targets.router && !want("router"))) continue;
      if (target === portkeyStreamTarget && !want("portkey")) continue;
      const r = await ttfb(target, CFG.ttfbRequests);
      results.ttfb.push({ target: target.name, ...r });
    }
    await settled();
  }

  // Metering really ran: one token_usage row per 200 of ours (load runs, probes, warm-ups, streams).
  results.usageRows = { main: usageRows([mainUser]), many: manyUsers.length ? usageRows(manyUsers) : 0 };

  if (CFG.agents) {
    say(
      `agent runs: steps ${
        CFG.agentSteps.join(",")
      } × ${CFG.agentRuns} runs at c=1 and c=${CFG.agentConcurrency}`,
    );
    const agentTokens = new Map(
      [...agentUsers, ...cacheUsers].map((id) => [id, userToken(keys, id, apiUrl)]),
    );
    const ctx = {
      cfg: CFG,
      psql,
      say,
      agentsUrl: `${apiUrl}/functions/v1/agents-execute`,
      tokens: agentTokens,
      hires: agentSetup.hires,
      employees: agentEmployeeList,
      fakeUrl: `http://127.0.0.1:${fakePort}`,
      fakeKey: FAKE_KEY,
      control: `http://127.0.0.1:${controlPort}`,
    };
    results.agents = await benchAgentOverhead(ctx);
    await settled();
    if (CFG.cacheTurns > 0) results.promptCache = await benchPromptCache(ctx);
    await settled();
  }

  if (CFG.profileIterations > 0) {
    say(`profiling the pipeline's steps: ${CFG.profileIterations} sequential iterations`);
    const out = execFileSync(DENO, ["run", "--allow-all", "--quiet", "scripts/bench/gateway-profile.ts"], {
      cwd: ROOT,
      encoding: "utf8",
      env: {
        ...baseEnv(),
        SUPABASE_DB_URL: env.DB_URL,
        SUPABASE_URL: apiUrl,
        SUPABASE_JWKS: JSON.stringify({ keys: [{ ...keys.signing_jwk, d: undefined }] }),
        JWT_SECRET: keys.jwt_secret,
        UPSTASH_REDIS_REST_URL: env.UPSTASH_REDIS_REST_URL,
        UPSTASH_REDIS_REST_TOKEN: env.UPSTASH_REDIS_REST_TOKEN,
        BENCH_TOKEN: token,
        BENCH_UPSTREAM: fakeBase,
        BENCH_UPSTREAM_KEY: FAKE_KEY,
        BENCH_ITERATIONS: String(CFG.profileIterations),
        ...(CFG.dbPoolMax ? { DB_POOL_MAX: CFG.dbPoolMax } : {}),
      },
      stdio: ["ignore", "pipe", "inherit"],
    });
    results.profile = JSON.parse(out.trim().split("\n").pop());
  }

  const fnLog = fs.readFileSync(functions.log, "utf8");
  const restarts = (fnLog.match(/functions changed: restarting/g) ?? []).length;
  if (restarts) {
    results.notes.push(
      `the functions server restarted workers ${restarts}× during the run (a file under supabase/functions/ ` +
        `changed): cold starts may be in the numbers`,
    );
  }
  // autocannon ends a run by closing its connections: the calls in flight then are cancelled, and the gateway
  // logs each as "upstream request failed" (AbortError "client") + "request failed" (502), at level error.
  const problemLines = fnLog.split("\n").filter((l) => /"level":"(warn|error)"/.test(l));
  const requestId = (l) => /"request_id":"([^"]+)"/.exec(l)?.[1];
  const cancelled = new Set(problemLines.filter((l) => l.includes('"message":"client"')).map(requestId));
  const problems = problemLines.filter((l) => !cancelled.has(requestId(l)));
  if (cancelled.size) {
    results.notes.push(
      `${cancelled.size} calls were cancelled by the load generator closing its connections at the end of runs ` +
        `(expected); the gateway logs each one twice at level error ("upstream request failed", "request failed").`,
    );
  }
  if (problems.length) {
    results.notes.push(
      `${problems.length} other warn/error log lines from the functions, e.g. ${problems[0].slice(0, 300)}`,
    );
  }
  results.machine = {
    nproc: os.availableParallelism?.() ?? os.cpus().length,
    cpu: os.cpus()[0]?.model ?? "?",
    memGiB: (os.totalmem() / 2 ** 30).toFixed(1),
    loadStart: loadStart.map((x) => x.toFixed(2)).join(" "),
    node: process.version,
    deno: denoVersion(),
    portkey: JSON.parse(fs.readFileSync(path.join(PORTKEY_DIR, "package.json"), "utf8")).version,
    autocannon:
      JSON.parse(fs.readFileSync(path.join(ROOT, "node_modules/autocannon/package.json"), "utf8")).version,
    postgres: psql("show server_version").split(" ")[0],
  };
  report();
}

// --------------------------------------------------------------------------------------------- report
function report() {
  const { load, ttfb: streams, machine: m } = results;
  const byKey = (name, c) => load.find((r) => r.target === name && r.c === c);
  const directName = "direct (fake upstream)";
  const lines = [];
  const p = (s = "") => lines.push(s);

  p(`## LLM gateway benchmark — ${new Date().toISOString()}`);
  p();
  p(
    `Machine: ${m.nproc} CPUs (${m.cpu}), ${m.memGiB} GiB, load at start ${m.loadStart}; node ${m.node}, ` +
      `deno ${m.deno}, PostgreSQL ${m.postgres}, @portkey-ai/gateway ${m.portkey}, autocannon ${m.autocannon}. ` +
      `Everything (load generator, fake upstream, gateways, Postgres, Redis, Upstash endpoint) shares these CPUs.`,
  );
  p(
    `Load: non-streaming \`POST /v1/chat/completions\` (${MODEL}, the fake's default reply), ${CFG.warmup} s ` +
      `warm-up + ${CFG.duration} s per row, keep-alive; our proxy with a real ${CFG.jwtAlg} user token, admission ` +
      `+ hold, ${
        CFG.limits === "upstash" ? "Upstash" : "Postgres (in the admission SQL)"
      } rpm/tpm limits, and metering on. "+p50"/"+p99": latency added over the direct upstream at ` +
      `the same concurrency; "× direct": throughput relative to it.`,
  );
  p();
  p("| target | c | p50 ms | p95 ms | p99 ms | req/s | +p50 ms | +p99 ms | × direct req/s | 200s | non-200 / errors |");
  p("| --- | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: |");
  for (const r of load) {
    const d = byKey(directName, r.c);
    const isDirect = r.target === directName;
    p(
      `| ${r.target} | ${r.c} | ${fmt(r.p50)} | ${fmt(r.p95)} | ${fmt(r.p99)} | ${fmt(r.rps, 0)} | ${
        isDirect || !d ? "" : fmt(r.p50 - d.p50)
      } | ${isDirect || !d ? "" : fmt(r.p99 - d.p99)} | ${
        isDirect || !d ? "1.00" : fmt(r.rps / d.rps)
      } | ${r.ok} | ${r.bad + r.errors + r.timeouts}${r.bad ? ` ${JSON.stringify(r.statuses)}` : ""} |`,
    );
  }
  p();

  // The router hop, and the verdict against Portkey.
  const cLow = Math.min(...CFG.connections);
  const cHigh = maxConnections;
  const hop = (c) => {
    const a = byKey("ours (router → worker)", c);
    const b = byKey("ours (worker only)", c);
    return a && b ? `${fmt(a.p50 - b.p50)} ms p50 at c=${c}` : null;
  };
  const hops = CFG.connections.map(hop).filter(Boolean);
  if (hops.length) {
    p(`Router hop (ours via the functions server minus the worker alone): ${hops.join(", ")}.`);
  }
  const d1 = byKey(directName, cLow);
  const ours1 = byKey("ours (router → worker)", cLow);
  const pk1 = byKey("Portkey", cLow);
  const oursHigh = byKey("ours (router → worker)", cHigh);
  const pkHigh = byKey("Portkey", cHigh);
  const w1 = byKey("ours (worker only)", cLow);
  const wHigh = byKey("ours (worker only)", cHigh);
  if (d1 && ours1 && pk1) {
    const added = ours1.p50 - d1.p50;
    const pkAdded = pk1.p50 - d1.p50;
    p(
      `Target 1, added latency at c=${cLow} ≤ Portkey's: ours +${fmt(added)} ms` +
        (w1 ? ` (worker only +${fmt(w1.p50 - d1.p50)} ms)` : "") +
        ` vs Portkey +${fmt(pkAdded)} ms → **${added <= pkAdded ? "met" : "missed"}** ` +
        `(issue's reference: Portkey +0.75 ms on 2 cores).`,
    );
  }
  if (oursHigh && pkHigh) {
    p(
      `Target 2, throughput at c=${cHigh} ≥ Portkey's: ours ${fmt(oursHigh.rps, 0)} req/s` +
        (wHigh ? ` (worker only ${fmt(wHigh.rps, 0)})` : "") +
        ` vs Portkey ${fmt(pkHigh.rps, 0)} req/s → **${oursHigh.rps >= pkHigh.rps ? "met" : "missed"}** ` +
        `(issue's reference: Portkey ~1 800 req/s on 2 cores).`,
    );
  }
  p();

  p(
    `CPU time per 200 response during the measured seconds, by process (ms of CPU per request; the machine has ` +
      `${m.nproc} CPUs = ${m.nproc * 1000} ms of CPU per second). "other": everything else on the machine.`,
  );
  p();
  const roles = ROLES.filter((r) => load.some((x) => x.cpu[r] > 0));
  p(`| target | c | ${roles.join(" | ")} | total | CPUs busy |`);
  p(`| --- | --: | ${roles.map(() => "--:").join(" | ")} | --: | --: |`);
  for (const r of load) {
    const total = Object.values(r.cpu).reduce((a, b) => a + b, 0);
    const per = (ms) => (r.ok ? fmt(ms / r.ok, 3) : "–");
    p(
      `| ${r.target} | ${r.c} | ${roles.map((role) => per(r.cpu[role])).join(" | ")} | ${per(total)} | ${
        fmt(total / 1000 / r.seconds, 2)
      } |`,
    );
  }
  p();

  if (streams.length) {
    p(
      `Streaming (\`stream: true\`), c=1, ${CFG.ttfbRequests} sequential requests per target after a warm-up: time ` +
        `to the response headers, to the first body byte, and to the end of the stream (ms).`,
    );
    p();
    p(
      "| target | headers p50 | p95 | p99 | first byte p50 | p95 | p99 | +first byte p50 | whole stream p50 | not OK |",
    );
    p("| --- | --: | --: | --: | --: | --: | --: | --: | --: | --: |");
    const ds = streams.find((s) => s.target === directName);
    for (const s of streams) {
      p(
        `| ${s.target} | ${fmt(s.headers.p50)} | ${fmt(s.headers.p95)} | ${fmt(s.headers.p99)} | ${
          fmt(s.first.p50)
        } | ${fmt(s.first.p95)} | ${fmt(s.first.p99)} | ${
          s === ds || !ds ? "" : fmt(s.first.p50 - ds.first.p50)
        } | ${fmt(s.whole.p50)} | ${s.bad}${s.bad ? ` ${JSON.stringify(s.statuses)}` : ""} |`,
      );
    }
    p();
  }

  if (results.agents || results.promptCache) {
    agentReport(p, results.agents, results.promptCache, CFG);
  }

  if (results.profile) {
    p(
      `Where our time goes: the pipeline's steps run one after another with the gateway's own modules ` +
        `(scripts/bench/gateway-profile.ts), ${results.profile.iterations} sequential iterations, ms.`,
    );
    p();
    p("| step | what | p50 | p95 | p99 | mean |");
    p("| --- | --- | --: | --: | --: | --: |");
    for (const s of results.profile.steps) {
      p(`| ${s.name} | ${s.what} | ${fmt(s.p50, 3)} | ${fmt(s.p95, 3)} | ${fmt(s.p99, 3)} | ${
        fmt(s.mean, 3)
      } |`);
    }
    p();
  }
  const sqlRows = Object.entries(results.sql);
  if (sqlRows.length) {
    p("Server-side SQL time during the load runs (pg_stat_statements deltas; execution only, no round trip):");
    p();
    p(
      "| run | lease calls | lease mean ms | settle batches | settle batch mean ms | holds and leases all given back after (ms) |",
    );
    p("| --- | --: | --: | --: | --: | --: |");
    for (const [k, v] of sqlRows) {
      p(
        `| ${k} | ${v.lease.calls} | ${fmt(v.lease.meanMs, 3)} | ${v.settle.calls} | ${
          fmt(v.settle.meanMs, 3)
        } | ${results.settleDrainMs[k] ?? "timeout"} |`,
      );
    }
    p();
  }
  if (results.usageRows) {
    const oursOk = load.filter((r) => r.target.startsWith("ours")).reduce((a, r) => a + r.ok, 0);
    p(
      `Metering check: ${
        results.usageRows.main + results.usageRows.many
      } token_usage rows written for the bench users (≥ ${oursOk} measured 200s of ours, plus warm-ups, probes ` +
        `and streams).`,
    );
  }
  for (const n of results.notes) p(`Note: ${n}`);
  process.stdout.write(lines.join("\n") + "\n");
  const file = path.join(TMP, "report.md");
  fs.writeFileSync(file, lines.join("\n") + "\n");
}

// --------------------------------------------------------------------------------------------- cleanup
let cleaning = null;
function cleanup() {
  cleaning ??= (async () => {
    await Promise.all(procs.map(stop));
    try {
      deleteBenchData();
    } catch (e) {
      say(`cleanup: could not delete the bench plan ${PLAN} and users: ${e.message}`);
    }
    if (CFG.keepLogs) say(`logs kept in ${TMP}`);
    else fs.rmSync(TMP, { recursive: true, force: true });
  })();
  return cleaning;
}
for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143], ["SIGHUP", 129]]) {
  process.on(signal, () => {
    say(`${signal}: stopping what the benchmark started`);
    cleanup().finally(() => process.exit(code));
  });
}
process.on("exit", () => {
  for (const p of procs) if (!p.exited) signalGroup(p, "SIGKILL");
});

main().then(
  () => cleanup(),
  async (e) => {
    say(`failed: ${e?.stack ?? e}`);
    for (const p of procs) {
      if (p.exited || /failed|error/i.test(String(e))) say(`--- ${p.name} log:\n${tail(p.log, 15)}`);
    }
    CFG.keepLogs = true;
    await cleanup();
    process.exit(1);
  },
);
