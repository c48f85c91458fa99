// The token ledger under real concurrency: many connections call private.update_user_token_balance for one
// user at the same instant. The balance must come out exact, the ledger rows must sum to it with a
// consistent running balance_after, a reference reused concurrently must apply once, and concurrent debits
// beyond the balance must fail with PB402 without the balance ever going negative.
import assert from "node:assert/strict";
import postgres from "npm:postgres@3.4.9";

const DB_URL = Deno.env.get("DB_URL") ?? "postgresql://postgres:postgres@127.0.0.1:54322/postgres";
const POOL_SIZE = 20;

type Sql = postgres.Sql;
type LedgerRow = { id: string; delta: string; balance_after: string; reference: string };
type ChangeResult = { id: string; balance_after: string; pid: number };
type Tx = postgres.TransactionSql;
type Call = { kind: string; run: (tx: Tx) => Promise<ChangeResult> };

const connect = (max: number) =>
  postgres(DB_URL, {
    max,
    idle_timeout: 5,
    connect_timeout: 10,
    onnotice: () => {},
    connection: { application_name: "ledger_concurrency_test" },
  });

async function withPool(fn: (sql: Sql) => Promise<void>): Promise<void> {
  const sql = connect(POOL_SIZE);
  try {
    await fn(sql);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/**
 * Runs every call in its own transaction on the pool, all released at the same instant: each transaction
 * first waits on a shared advisory lock that a separate gate connection holds exclusively, and the gate
 * opens only once every pool connection is waiting on it. Without the gate the calls would trickle in one
 * by one and a ledger without proper locking could still pass.
 */
async function concurrently(sql: Sql, calls: Call[]): Promise<PromiseSettledResult<ChangeResult>[]> {
  const gate = connect(1);
  const key = 1 + Math.floor(Math.random() * 2 ** 30);
  try {
    await gate`select pg_advisory_lock(${key}::bigint)`;
    const settled = Promise.allSettled(calls.map((call) =>
      sql.begin(async (tx) => {
        await tx`select pg_advisory_xact_lock_shared(${key}::bigint)`;
        return await call.run(tx);
      })
    ));
    const expected = Math.min(POOL_SIZE, calls.length);
    const deadline = Date.now() + 15_000;
    for (;;) {
      const [{ n }] = await gate<{ n: number }[]>`
        select count(*)::int as n from pg_locks
         where locktype = 'advisory' and classid = 0 and objid::bigint = ${key}::bigint and not granted`;
      if (n >= expected) break;
      if (Date.now() > deadline) {
        throw new Error(`only ${n} of ${expected} connections reached the start gate`);
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    await gate`select pg_advisory_unlock(${key}::bigint)`;
    return await settled;
  } finally {
    await gate.end({ timeout: 5 });
  }
}

/** Creates an auth user (the identity trigger creates public.users and the zero balance row). */
async function createUser(sql: Sql): Promise<string> {
  const email = `ledger-concurrency-${crypto.randomUUID()}@example.com`;
  const [row] = await sql<{ id: string }[]>`
    insert into auth.users (id, aud, role, email, email_confirmed_at, raw_app_meta_data, raw_user_meta_data)
    values (gen_random_uuid(), 'authenticated', 'authenticated', ${email}, now(), '{"provider":"email"}', '{}')
    returning id`;
  return row.id;
}

async function deleteUser(sql: Sql, userId: string): Promise<void> {
  await sql`delete from auth.users where id = ${userId}`;
  const [left] = await sql<{ n: number }[]>`
    select count(*)::int as n from public.token_transactions where user_id = ${userId}`;
  assert.equal(left.n, 0, "deleting the test user removes its ledger rows");
}

/** One call of the ledger function (on the connection or transaction given). */
async function change(
  sql: Sql | Tx,
  userId: string,
  delta: number,
  reference: string,
): Promise<ChangeResult> {
  const [row] = await sql<ChangeResult[]>`
    select t.id::text, t.balance_after::text, pg_backend_pid() as pid
      from private.update_user_token_balance(
        ${userId}::uuid, ${delta}::bigint, ${delta < 0 ? "usage" : "adjustment"}, ${reference}
      ) t`;
  return row;
}

async function balanceOf(sql: Sql, userId: string): Promise<bigint> {
  const [row] = await sql<{ balance: string }[]>`
    select balance::text from public.token_balances where user_id = ${userId}`;
  return BigInt(row.balance);
}

async function ledgerOf(sql: Sql, userId: string): Promise<LedgerRow[]> {
  return await sql<LedgerRow[]>`
    select t.id::text, t.delta::text, t.balance_after::text, t.reference
      from public.token_transactions t where t.user_id = ${userId} order by t.id`;
}

/** Every row's balance_after is the previous row's plus its delta (the first starts from 0), never < 0. */
function assertRunningSum(rows: LedgerRow[]): bigint {
  let running = 0n;
  for (const [i, row] of rows.entries()) {
    running += BigInt(row.delta);
    assert.equal(
      BigInt(row.balance_after),
      running,
      `ledger row ${i} (id ${row.id}, ${row.reference}): balance_after ${row.balance_after}, running sum ${running}`,
    );
    assert.ok(running >= 0n, `ledger row ${i} (id ${row.id}) records a negative balance ${running}`);
  }
  return running;
}

function errorCode(reason: unknown): string | undefined {
  return (reason as { code?: string } | null)?.code;
}

Deno.test(
  "ledger: 100 concurrent credits and debits plus 20 concurrent replays of one reference leave an exact balance and a consistent ledger",
  async () => {
    await withPool(async (sql) => {
      const userId = await createUser(sql);
      const run = crypto.randomUUID();
      try {
        await change(sql, userId, 10_000, `conc:${run}:opening`);

        // 50 debits of 150 and 50 credits of 100 with distinct references, interleaved, and 20 calls that
        // all reuse one reference (credit 7) spread among them.
        const replayed = `conc:${run}:replayed`;
        const calls: Call[] = [];
        for (let i = 0; i < 100; i++) {
          const debit = i % 2 === 0;
          const delta = debit ? -150 : 100;
          const reference = `conc:${run}:${debit ? "debit" : "credit"}:${i}`;
          calls.push({ kind: debit ? "debit" : "credit", run: (tx) => change(tx, userId, delta, reference) });
          if (i % 5 === 2) calls.push({ kind: "replay", run: (tx) => change(tx, userId, 7, replayed) });
        }
        assert.equal(calls.filter((c) => c.kind === "replay").length, 20);

        const results = await concurrently(sql, calls);

        const failures = results.flatMap((r, i) =>
          r.status === "rejected" ? [`${calls[i].kind}: ${errorCode(r.reason)} ${r.reason}`] : []
        );
        assert.deepEqual(failures, [], "every call succeeds (the balance never runs out in this round)");
        const ok = results.map((r) => (r as PromiseFulfilledResult<ChangeResult>).value);
        const pids = new Set(ok.map((r) => r.pid));
        assert.ok(
          pids.size >= 10,
          `the calls ran on ${pids.size} connections, expected at least 10 in parallel`,
        );

        const replayIds = new Set(ok.filter((_, i) => calls[i].kind === "replay").map((r) => r.id));
        assert.equal(replayIds.size, 1, "the 20 calls reusing one reference all return the same ledger row");

        const expected = 10_000n - 50n * 150n + 50n * 100n + 7n;
        assert.equal(await balanceOf(sql, userId), expected, "the final balance is exact");

        const rows = await ledgerOf(sql, userId);
        assert.equal(rows.length, 1 + 100 + 1, "one ledger row per distinct reference (opening + 100 + 1)");
        assert.equal(
          rows.filter((r) => r.reference === replayed).length,
          1,
          "the reused reference produced exactly one row",
        );
        assert.equal(rows.find((r) => r.reference === replayed)?.id, [...replayIds][0]);
        const sum = rows.reduce((acc, r) => acc + BigInt(r.delta), 0n);
        assert.equal(sum, expected, "the ledger rows sum to the balance");
        assert.equal(assertRunningSum(rows), expected, "balance_after by id is a consistent running sum");
      } finally {
        await deleteUser(sql, userId);
      }
    });
  },
);

Deno.test(
  "ledger: 30 concurrent debits of 100 against a balance of 1000 - exactly 10 succeed, 20 fail with PB402, never negative",
  async () => {
    await withPool(async (sql) => {
      const userId = await createUser(sql);
      const run = crypto.randomUUID();
      try {
        await change(sql, userId, 1_000, `conc:${run}:opening`);

        const results = await concurrently(
          sql,
          Array.from({ length: 30 }, (_, i) => ({
            kind: "debit",
            run: (tx: Tx) => change(tx, userId, -100, `conc:${run}:overdraw:${i}`),
          })),
        );

        const succeeded = results.filter((r) => r.status === "fulfilled") as PromiseFulfilledResult<
          ChangeResult
        >[];
        const failed = results.filter((r) => r.status === "rejected") as PromiseRejectedResult[];
        assert.equal(succeeded.length, 10, "exactly the 10 affordable debits succeed");
        assert.equal(failed.length, 20, "the other 20 debits fail");
        assert.deepEqual(
          failed.map((r) => errorCode(r.reason)).filter((code) => code !== "PB402"),
          [],
          "every failed debit fails with PB402 (insufficient tokens)",
        );
        assert.deepEqual(
          succeeded.map((r) => BigInt(r.value.balance_after)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)),
          [0n, 100n, 200n, 300n, 400n, 500n, 600n, 700n, 800n, 900n],
          "the successful debits step the balance down 900, 800, … 0",
        );

        assert.equal(await balanceOf(sql, userId), 0n, "the balance ends at exactly 0");
        const rows = await ledgerOf(sql, userId);
        assert.equal(rows.length, 11, "the opening credit and the 10 successful debits are in the ledger");
        assert.equal(assertRunningSum(rows), 0n, "the ledger never records a negative balance and sums to 0");
      } finally {
        await deleteUser(sql, userId);
      }
    });
  },
);
