// npm run bench:db [-- --scale 1] — the seed's operations at the seed's scale, measured as PostgREST runs them,
// next to the same operations on the seed's as-audited design and a primary-key floor, in the same run; and the
// Data API stand-in's own cost (the same calls through /rest/v1), and the cached marketplace endpoint's
// requests/s. A benchmark script, never a test: it asserts nothing and only reports (DESIGN.md §4).
//
//   data        db/generate.ts: --scale 1 is 10 000 users, 500 AI employees with versions, 50 000 hires,
//               2 000 000 token_usage rows, 200 000 chat sessions with 2 000 000 messages (db/chat-data.ts)
//               (--scale 0.1 for a quick run), loaded into the stack's database as bench-* users and employees,
//               and into a scratch cluster for the as-audited copy
//   as-audited  db/audited.ts: the scratch copy without our secondary indexes and rollups (AUDITED_LACKS), with
//               the seed's chat design (db/chat-seed-design.ts: the nested policy, the seed's indexes)
//   operations  db/operations.ts: the marketplace's first page, a later keyset page and a search; a hire; a
//               user's month-to-date usage (the seed's sum over token_usage, and get_usage_summary);
//               db/chat-operations.ts: the chat message load (the last 50 messages of a session), the keyset
//               next page, my sessions newest first
//   measure     db/measure.ts: p50/p95/p99 over BENCH_RUNS (1 000) runs at each BENCH_CONCURRENCY (1,16)
//   EXPLAIN     (ANALYZE, BUFFERS) of every operation on both, with the plans inside its functions, saved to
//               .stack/bench/explain/
//
// The stack must be up (npm start). Everything it wrote to the stack's database is deleted at the end, on
// failure and on Ctrl-C; the scratch cluster is removed.
//
// env (all optional): BENCH_RUNS=1000 (per operation, design and concurrency) BENCH_CONCURRENCY=1,16
// BENCH_AUDITED_SECONDS=30 (an as-audited cell stops after this long, with at least 100 runs; 0: no limit)
// BENCH_REST=1 (0 skips the /rest/v1 comparison) BENCH_LOAD_SECONDS=10 (autocannon per scenario; 0 skips it).
import postgres from "npm:postgres@3.4.9";
import { join } from "node:path";
import { AUDITED_LACKS, auditedCopy, degrade } from "./db/audited.ts";
import { CHAT_TARGET_P95_MS, chatOperations, sampleChat } from "./db/chat-operations.ts";
import { CHAT_SEED_DESIGN } from "./db/chat-seed-design.ts";
import { explain } from "./db/explain.ts";
import { cleanup, generate, type Loaded, scaleOf } from "./db/generate.ts";
import { measure, type Stats } from "./db/measure.ts";
import {
  floor,
  type Operation,
  prepareTarget,
  restOperations,
  runAsUser,
  seedOperations,
  type Target,
} from "./db/operations.ts";
import {
  type LoadRow,
  loadTable,
  type RestRow,
  restTable,
  type SeedRow,
  seedTable,
  TARGET_FLOOR_RATIO,
  TARGET_P95_MS,
} from "./db/report.ts";
import { authenticatorUrl, progress, readStack, ROOT } from "./db/stack.ts";

const num = (name: string, fallback: number) => Number(Deno.env.get(name) ?? fallback);
const RUNS = num("BENCH_RUNS", 1000);
const CONCURRENCY = (Deno.env.get("BENCH_CONCURRENCY") ?? "1,16").split(",").map(Number);
const AUDITED_SECONDS = num("BENCH_AUDITED_SECONDS", 30);
const REST = Deno.env.get("BENCH_REST") !== "0";
const LOAD_SECONDS = num("BENCH_LOAD_SECONDS", 10);
const scaleArg = Deno.args.indexOf("--scale");
const SCALE_FACTOR = scaleArg >= 0 ? Number(Deno.args[scaleArg + 1]) : 1;
const scale = scaleOf(SCALE_FACTOR);
const EXPLAIN_DIR = join(ROOT, ".stack", "bench", "explain");

const stack = await readStack();
// Named, so an interrupted run can end its own statements before it cleans up.
const APP = `bench:db ${Deno.pid}`;
const options = { onnotice: () => {}, connection: { application_name: APP } };
const admin = postgres(stack.dbUrl, { max: 4, ...options });
const maxConcurrency = Math.max(...CONCURRENCY);
const ourApi = postgres(authenticatorUrl(stack.dbUrl), { max: maxConcurrency, ...options });
let scratch: Awaited<ReturnType<typeof auditedCopy>>["db"] | undefined;
let auditedAdmin: postgres.Sql | undefined;
let auditedApi: postgres.Sql | undefined;

let cleaned: Promise<void> | undefined;
function cleanUp(interrupted = false): Promise<void> {
  cleaned ??= (async () => {
    progress("deleting the benchmark's users and employees from the stack's database");
    // Interrupted: this run's statements still running are ended first (their transactions roll back), so none
    // commits rows after the cleanup; then a connection of its own deletes what was committed.
    const sql = interrupted ? postgres(stack.dbUrl, { max: 1, onnotice: () => {} }) : admin;
    if (interrupted) {
      await sql`select pg_terminate_backend(pid) from pg_stat_activity
                 where application_name = ${APP} and pid <> pg_backend_pid()`.catch(() => {});
    }
    await cleanup(sql).catch((e) => console.error(`[bench:db] cleanup failed: ${e}`));
    if (interrupted) await sql.end();
    await Promise.all(
      [admin, ourApi, auditedAdmin, auditedApi].map((c) => c?.end({ timeout: 1 }).catch(() => {})),
    );
    await scratch?.stop();
  })();
  return cleaned;
}
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, () => {
    progress(`${signal}: cleaning up`);
    cleanUp(true).finally(() => Deno.exit(130));
  });
}

const machine = async () => {
  const cpu = (await Deno.readTextFile("/proc/cpuinfo")).match(/model name\s*:\s*(.*)/)?.[1] ?? "unknown CPU";
  const [{ version }] = await admin`select current_setting('server_version') as version`;
  return `${navigator.hardwareConcurrency} cores (${cpu}), PostgreSQL ${version}`;
};

async function explainAll(target: Target, url: string, ops: Operation[]) {
  await Deno.mkdir(EXPLAIN_DIR, { recursive: true });
  for (const op of ops) {
    await Deno.writeTextFile(
      join(EXPLAIN_DIR, `${target.name}-${op.key}.txt`),
      await explain(url, op, op.call(0)),
    );
  }
}

const runOn = (target: Target, op: Operation) => async (n: number) => {
  await runAsUser(target.api, op.call(n));
};

try {
  const started = performance.now();
  progress(
    `loading --scale ${SCALE_FACTOR} into the stack's database and an as-audited scratch copy, in parallel`,
  );
  const [ours, audited]: [Loaded, Awaited<ReturnType<typeof auditedCopy>>] = await Promise.all([
    generate(admin, scale, "ours"),
    auditedCopy(scale, (db) => scratch = db),
  ]);
  const loadSeconds = (performance.now() - started) / 1000;
  progress(`both loaded in ${loadSeconds.toFixed(1)} s`);
  const dropped = await degrade(scratch!.url);
  auditedAdmin = postgres(scratch!.url, { max: 2, onnotice: () => {} });
  // The load leaves gigabytes of dirty pages; written back during the measurements they would stall its reads (the
  // disk here writes a few tens of MB/s). A checkpoint on both writes them out first.
  const checkpointStarted = performance.now();
  await Promise.all([admin`checkpoint`, auditedAdmin`checkpoint`]);
  const checkpointSeconds = (performance.now() - checkpointStarted) / 1000;
  progress(`checkpoint of both in ${checkpointSeconds.toFixed(1)} s`);
  auditedApi = postgres(authenticatorUrl(scratch!.url), { max: maxConcurrency, onnotice: () => {} });

  const hiresNeeded = CONCURRENCY.reduce((n, c) => n + 20 * c + RUNS, 0) + 10;
  const oursTarget = await prepareTarget("ours", admin, ourApi, ours.users, hiresNeeded);
  const auditedTarget = await prepareTarget(
    "as-audited",
    auditedAdmin,
    auditedApi,
    audited.loaded.users,
    hiresNeeded,
  );
  const oursChat = chatOperations(await sampleChat(admin, ours.users));
  const auditedChat = chatOperations(await sampleChat(auditedAdmin, audited.loaded.users));
  const oursOps = [floor(oursTarget), ...seedOperations(oursTarget), ...oursChat];
  const auditedOps = [floor(auditedTarget), ...seedOperations(auditedTarget), ...auditedChat];
  const isChat = new Set(oursChat.map((op) => op.key));

  progress(`EXPLAIN (ANALYZE, BUFFERS) of each operation → ${EXPLAIN_DIR}`);
  await explainAll(oursTarget, stack.dbUrl, oursOps);
  await explainAll(auditedTarget, scratch!.url, auditedOps);

  const seedRows: SeedRow[] = [];
  for (const concurrency of CONCURRENCY) {
    // The hires of the previous round folded, as the minute's job does, on both.
    await admin`select private.fold_employee_analytics()`;
    await auditedAdmin`select private.fold_employee_analytics()`;
    const floors: Stats[] = [];
    for (const [i, op] of oursOps.entries()) {
      progress(`${op.name}, c=${concurrency}`);
      const o = await measure(runOn(oursTarget, op), { runs: RUNS, concurrency });
      const a = await measure(runOn(auditedTarget, auditedOps[i]), {
        runs: RUNS,
        concurrency,
        maxSeconds: AUDITED_SECONDS || undefined,
      });
      if (i === 0) floors.push(o, a);
      seedRows.push({
        key: op.key,
        name: op.name,
        concurrency,
        ours: o,
        audited: a,
        oursFloor: floors[0],
        auditedFloor: floors[1],
      });
    }
  }

  const restRows: RestRow[] = [];
  if (REST) {
    const restUsers = ours.users.slice(0, 2000);
    const tokens = new Map<string, string>();
    for (const id of restUsers) tokens.set(id, await stack.sign(id));
    const restTarget: Target = { ...oursTarget, users: restUsers };
    const http = (op: Operation, base: string) => async (n: number) => {
      const { user } = op.call(n);
      const { path, init } = op.http!(user);
      const res = await fetch(`${base}${path}`, {
        ...init,
        headers: { apikey: stack.anonKey, authorization: `Bearer ${tokens.get(user)}`, ...init?.headers },
      });
      await res.arrayBuffer();
      if (!res.ok) throw new Error(`${op.name}: HTTP ${res.status}`);
    };
    for (const concurrency of CONCURRENCY) {
      for (const op of restOperations(restTarget)) {
        progress(`/rest/v1: ${op.name}, c=${concurrency}`);
        restRows.push({
          name: op.name,
          concurrency,
          sql: await measure(runOn(restTarget, op), { runs: RUNS, concurrency }),
          service: await measure(http(op, stack.restServiceUrl), { runs: RUNS, concurrency }),
          http: await measure(http(op, `${stack.apiUrl}/rest/v1`), { runs: RUNS, concurrency }),
        });
      }
    }
  }

  let loadRows: LoadRow[] = [];
  let loadNote = "not measured (BENCH_LOAD_SECONDS=0)";
  if (LOAD_SECONDS > 0) {
    const probe = await fetch(`${stack.apiUrl}/functions/v1/marketplace`, {
      headers: { apikey: stack.anonKey, authorization: `Bearer ${stack.anonKey}` },
    });
    await probe.arrayBuffer();
    if (probe.ok) {
      progress(
        `autocannon on GET /functions/v1/marketplace, ${maxConcurrency} connections, ${LOAD_SECONDS} s each`,
      );
      const out = await new Deno.Command("node", {
        args: [
          join(ROOT, "scripts", "bench", "db", "marketplace-load.mjs"),
          stack.apiUrl,
          stack.anonKey,
          String(maxConcurrency),
          String(LOAD_SECONDS),
        ],
        stderr: "inherit",
      }).output();
      if (!out.success) throw new Error("marketplace-load.mjs failed");
      loadRows = new TextDecoder().decode(out.stdout).trim().split("\n").map((l) => JSON.parse(l));
      loadNote = "";
    } else {
      loadNote = `not measured: GET /functions/v1/marketplace answered ${probe.status}`;
    }
  }

  const seed = seedTable(seedRows.filter((r) => !isChat.has(r.key)));
  const chat = seedTable(seedRows.filter((r) => isChat.has(r.key)), { p95Ms: CHAT_TARGET_P95_MS });
  const c = ours.counts;
  const report = [
    `bench:db --scale ${SCALE_FACTOR} — ${c.users} users, ${c.employees} bench employees (+ the seed's) with ` +
    `${c.versions} versions, ${c.hires} hires, ${c.ratings} ratings, ${c.token_usage} token_usage rows ` +
    `(${c.usage_daily} usage_daily), ${c.ledger} ledger rows, ${c.chat_sessions} chat sessions with ` +
    `${c.chat_messages} messages; loaded in ${ours.seconds.toFixed(0)} s ` +
    `(both copies in parallel: ${loadSeconds.toFixed(0)} s, then a checkpoint of both: ` +
    `${checkpointSeconds.toFixed(0)} s); ${RUNS} runs per cell` +
    (AUDITED_SECONDS ? ` (an as-audited cell at most ${AUDITED_SECONDS} s, runs column)` : "") +
    `; ${await machine()}; ${new Date().toISOString().slice(0, 16)}Z`,
    "",
    seed.text,
    "",
    `Targets: p95 ≤ ${TARGET_P95_MS} ms and p95 ≤ ${TARGET_FLOOR_RATIO}× the floor's, in this run: ` +
    (seed.misses.length ? `not met by ${seed.misses.join(", ")}` : "met by every operation") + ".",
    "",
    "The as-audited copy lacks:",
    ...AUDITED_LACKS.map((l) => `- ${l}`),
    `- (dropped: ${dropped.join(", ")})`,
    "",
    "Chat (issue 13): ours next to the seed's design on the as-audited copy, same data, same statements:",
    "",
    chat.text,
    "",
    `Target: p95 ≤ ${CHAT_TARGET_P95_MS} ms, in this run: ` +
    (chat.misses.length ? `not met by ${chat.misses.join(", ")}` : "met by every chat operation") + ".",
    "",
    "The seed's chat design (as-audited copy):",
    ...CHAT_SEED_DESIGN.map((l) => `- ${l}`),
    "",
    ...(REST
      ? [
        "The Data API stand-in's own cost (the same calls by SQL and over HTTP, ours):",
        "",
        restTable(restRows),
        "",
      ]
      : []),
    loadNote ? `Marketplace endpoint: ${loadNote}.` : loadTable(loadRows),
    "",
    `EXPLAIN (ANALYZE, BUFFERS) of each operation: ${EXPLAIN_DIR}/`,
  ].join("\n");
  console.log(report);
  await Deno.mkdir(join(ROOT, ".stack", "bench"), { recursive: true });
  await Deno.writeTextFile(join(ROOT, ".stack", "bench", "db-report.md"), report + "\n");
  progress(`report also in ${join(ROOT, ".stack", "bench", "db-report.md")}`);
} finally {
  await cleanUp();
}
