// The lease book (_shared/gateway/admission/) on its own, against an in-memory store that keeps a balance and
// the limiter windows the way private.gateway_lease and Upstash do: when it renews, how much it asks for, what
// it admits from memory, when it gives a lease back. The SQL side is proved in
// supabase/tests/database/gateway/lease_*.test.sql and settle_batch_*.test.sql, and the whole path over HTTP in
// gateway*_test.ts.
import assert from "node:assert/strict";
import { createLeaseBook, type Ticket } from "../_shared/gateway/admission/book.ts";
import type { CallShape } from "../_shared/gateway/admission/hold.ts";
import type { LeaseSettings } from "../_shared/gateway/admission/state.ts";
import type { LeaseReply, LeaseRequest } from "../_shared/gateway/admission/store.ts";
import { gatewayOptionsFromEnv } from "../_shared/gateway/options.ts";
import { HttpError } from "../_shared/http/errors.ts";
import type { RateLimitResult } from "../_shared/limits/ratelimit.ts";

const USER = "00000000-0000-4000-8000-000000000001";
// Prices of one platform token per raw token (input, output and the rate alike), so a call's hold is its tokens.
const UNIT = 2_500_000;
const CALL: CallShape = {
  model: "m",
  inputEstimate: 10,
  requestedOutput: 90,
  choices: 1,
  inputUnbounded: false,
  searchContextSize: null,
}; // holds 100
const HOLD = 100;

/** Ends a call and reports its settlement: it cost `cost` platform tokens, and the balance stays ample. */
function done(ticket: Ticket, cost: number) {
  ticket.end();
  ticket.settled(cost, 1_000_000_000);
}

type Plan = { rpm: number; tpm: number; maxOutput: number; models: string[] };

/** A store with one user's balance, plan and limiter windows; counts what the book asks of it. */
function fakeStore(opts: { balance: number; plan: Plan; upstash: boolean; latencyMs?: number }) {
  const state = {
    balance: opts.balance,
    held: 0,
    plan: opts.plan,
    leases: new Map<string, number>(),
    requests: [] as LeaseRequest[],
    takes: [] as { key: string; cost: number }[],
    closed: [] as string[],
    windowHits: new Map<string, number>(),
    refuseTakes: false,
  };
  const wait = () => new Promise((r) => setTimeout(r, opts.latencyMs ?? 0));
  const windowEnd = () => (Math.floor(Date.now() / 60_000) + 1) * 60_000;
  const reply = (over: Partial<LeaseReply>): LeaseReply => ({
    outcome: "ok",
    message: null,
    plan: "p",
    plan_max_output: state.plan.maxOutput,
    plan_max_input: 1_000,
    pricing_id: 1,
    input_micro_usd_per_mtok: UNIT,
    cache_write_micro_usd_per_mtok: null,
    output_micro_usd_per_mtok: UNIT,
    reasoning_micro_usd_per_mtok: null,
    rate_micro_usd_per_mtok: UNIT,
    request_fee_micro_usd: 0,
    requests_per_minute: state.plan.rpm,
    tokens_per_minute: state.plan.tpm,
    granted_tokens: 0,
    granted_requests: 0,
    granted_rate_tokens: 0,
    requests_remaining: null,
    rate_tokens_remaining: null,
    limit_value: null,
    limit_reset_at: null,
    total_balance: null,
    ...over,
  });
  const store = {
    async lease(r: LeaseRequest): Promise<LeaseReply> {
      state.requests.push(r);
      await wait();
      const plan = state.plan;
      if (r.model !== null && plan.models.length > 0 && !plan.models.includes(r.model)) {
        return reply({ outcome: "forbidden", message: `Model ${r.model} is not available` });
      }
      const hold = r.inputEstimate +
        Math.min(Math.max(r.requestedOutput ?? plan.maxOutput, 0), plan.maxOutput) * r.choices;
      let calls = r.calls;
      const extra: Partial<LeaseReply> = {};
      if (r.checkLimits) {
        // Requests only (enough for these tests): take up to `calls`, at least one unless the instance has one.
        const used = state.windowHits.get("rpm") ?? 0;
        const need = r.ahead || r.haveRequests >= 1 ? 0 : 1;
        const want = Math.max(need, r.calls - r.haveRequests);
        if (used + need > plan.rpm) {
          state.windowHits.set("rpm", used + need);
          return reply({
            outcome: "rate_limited",
            limit_value: plan.rpm,
            limit_reset_at: new Date(windowEnd()),
          });
        }
        const granted = Math.min(want, plan.rpm - used);
        state.windowHits.set("rpm", used + granted);
        calls = Math.min(calls, r.haveRequests + granted);
        Object.assign(extra, {
          granted_requests: granted,
          granted_rate_tokens: granted * Math.min(hold, plan.tpm),
          requests_remaining: plan.rpm - used - granted,
          rate_tokens_remaining: plan.tpm,
          limit_reset_at: new Date(windowEnd()),
        });
      }
      const need = r.ahead ? 0 : Math.max(hold - r.haveTokens, 0);
      const want = Math.max(need, hold * calls - r.haveTokens);
      const available = state.balance - state.held;
      if (need > available) return reply({ outcome: "payment_required", message: "Token balance too low" });
      const grant = Math.min(want, Math.max(need, Math.floor(available / 4)), available);
      state.held += grant;
      state.leases.set(r.leaseId, (state.leases.get(r.leaseId) ?? 0) + grant);
      return reply({ ...extra, granted_tokens: grant });
    },
    take: opts.upstash
      ? async (key: string, limit: number, cost: number): Promise<RateLimitResult> => {
        state.takes.push({ key, cost });
        await wait();
        const hits = (state.windowHits.get(key) ?? 0) + cost;
        state.windowHits.set(key, hits);
        const allowed = !state.refuseTakes && hits <= limit;
        return {
          allowed,
          limit,
          remaining: Math.max(0, limit - hits),
          resetAt: windowEnd(),
          backend: "upstash",
        };
      }
      : null,
    close(leaseId: string) {
      state.closed.push(leaseId);
      state.held -= state.leases.get(leaseId) ?? 0;
      state.leases.delete(leaseId);
    },
  };
  return { store, state };
}

const SETTINGS: LeaseSettings = {
  planTtlMs: 60_000,
  idleMs: 50,
  growWindowMs: 1_000,
  maxCalls: 512,
  holdSeconds: 720,
};
const ROOMY: Plan = { rpm: 1_000_000, tpm: 1_000_000_000, maxOutput: 1_000, models: [] };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function refusal(p: Promise<unknown>): Promise<HttpError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof HttpError, String(e));
    return e;
  }
  assert.fail("admitted, expected a refusal");
}

Deno.test("leases: a user who keeps calling is admitted from memory, with far fewer renewals than calls", async () => {
  for (const upstash of [true, false]) {
    const { store, state } = fakeStore({ balance: 1e12, plan: ROOMY, upstash });
    const book = createLeaseBook(store, SETTINGS);
    for (let i = 0; i < 500; i++) done(await book.admit(USER, CALL), HOLD / 2);
    const label = upstash ? "with Upstash" : "Postgres limits";
    assert.ok(state.requests.length <= 20, `${label}: ${state.requests.length} lease calls for 500 calls`);
    if (upstash) {
      assert.ok(state.takes.length <= 30, `${label}: ${state.takes.length} Upstash takes for 500 calls`);
    }
    // Grown step by step: one call at first, then twice as many at each renewal (with Upstash, renewals of the
    // limiter headroom alone count too).
    const sized = state.requests.filter((r) => !r.ahead).map((r) => r.calls);
    if (upstash) {
      assert.equal(sized[0], 1, label);
      assert.ok(sized.every((n, i) => i === 0 || n > sized[i - 1]), `${label}: ${sized}`);
    } else assert.deepEqual(sized.slice(0, 3), [1, 2, 4], label);
    book.closeAll();
    assert.equal(state.held, 0, `${label}: everything given back`);
  }
});

Deno.test("leases: a caller that says its next calls are coming (an agent run) gets one lease for them, and the headroom ahead", async () => {
  for (const upstash of [true, false]) {
    const label = upstash ? "with Upstash" : "Postgres limits";
    const { store, state } = fakeStore({ balance: 1e12, plan: ROOMY, upstash, latencyMs: 1 });
    const book = createLeaseBook(store, SETTINGS);
    // Step 1 of 4: the lease is sized for the four, though the plan is not known yet.
    const first = await book.admit(USER, CALL, 4);
    assert.deepEqual(state.requests.map((r) => r.calls), [4], label);
    assert.equal(state.held, 4 * HOLD, `${label}: four calls' worth held`);
    if (upstash) {
      // The call runs; the headroom of the next three is taken meanwhile: their requests, then their tokens.
      const until = Date.now() + 5_000;
      const takenAhead = () => {
        const rpm = state.takes.findIndex((t) => t.key.startsWith("gw:rpm") && t.cost === 3);
        return rpm >= 0 && state.takes.slice(rpm + 1).some((t) => t.key.startsWith("gw:tpm"));
      };
      while (!takenAhead()) {
        assert.ok(
          Date.now() < until,
          `${label}: the next calls' headroom taken: ${JSON.stringify(state.takes)}`,
        );
        await sleep(5);
      }
    }
    done(first, HOLD / 2);
    const takes = state.takes.length;
    for (let left = 3; left >= 1; left--) done(await book.admit(USER, CALL, left), HOLD / 2);
    // (A top-up ahead, in the background, may go out as the lease runs low; no call waits for it.)
    assert.equal(
      state.requests.filter((r) => !r.ahead).length,
      1,
      `${label}: steps 2-4 waited on no lease call`,
    );
    assert.equal(state.takes.length, takes, `${label}: steps 2-4 waited on no Upstash take`);
    await sleep(SETTINGS.idleMs * 3);
    assert.equal(state.held, 0, `${label}: the lease went back once idle`);
  }
  // Without the hint nothing changes: one call's worth at first.
  const { store, state } = fakeStore({ balance: 1e12, plan: ROOMY, upstash: true });
  const book = createLeaseBook(store, SETTINGS);
  done(await book.admit(USER, CALL), 10);
  assert.deepEqual(state.requests.map((r) => r.calls), [1]);
});

Deno.test("leases: a small plan is admitted call by call, and each call's lease goes back when it ends", async () => {
  // rpm 7: an eighth of it is below one call, so no lease ever holds more than the call.
  const { store, state } = fakeStore({ balance: 1e9, plan: { ...ROOMY, rpm: 7 }, upstash: true });
  const book = createLeaseBook(store, SETTINGS);
  for (let i = 0; i < 5; i++) {
    const ticket = await book.admit(USER, CALL);
    assert.equal(state.held, HOLD, "the lease holds exactly the call");
    done(ticket, 20);
    assert.equal(state.held, 0, "given back as soon as the call ended");
  }
  assert.deepEqual(state.requests.map((r) => r.calls), [1, 1, 1, 1, 1]);
  assert.equal(state.closed.length, 5);
  assert.equal(new Set(state.closed).size, 5, "a lease given back is never used again");
});

Deno.test("leases: concurrent admissions never take more than the store granted", async () => {
  // The balance covers exactly 10 calls; 60 arrive at once.
  const { store, state } = fakeStore({ balance: 10 * HOLD, plan: ROOMY, upstash: true, latencyMs: 1 });
  const book = createLeaseBook(store, SETTINGS);
  const results = await Promise.allSettled(Array.from({ length: 60 }, () => book.admit(USER, CALL)));
  const admitted = results.filter((r) => r.status === "fulfilled");
  const refused = results.filter((r) => r.status === "rejected") as PromiseRejectedResult[];
  assert.equal(admitted.length, 10, "every call the balance covers, and no more");
  for (const r of refused) assert.equal((r.reason as HttpError).status, 402);
  assert.ok(state.held <= state.balance);
  for (const r of admitted) done((r as PromiseFulfilledResult<Ticket>).value, HOLD);
  await sleep(SETTINGS.idleMs * 3);
  assert.equal(state.held, 0, "given back once idle");
});

Deno.test("leases: a lease with room for more calls goes back after idleMs without calls, not before", async () => {
  const { store, state } = fakeStore({ balance: 1e12, plan: ROOMY, upstash: false });
  const book = createLeaseBook(store, SETTINGS);
  for (let i = 0; i < 4; i++) done(await book.admit(USER, CALL), 10);
  assert.ok(state.held > 0, "a grown lease stays for the next calls");
  const closed = state.closed.length; // the first call's lease of one call went back when it ended
  const ticket = await book.admit(USER, CALL);
  await sleep(SETTINGS.idleMs * 3);
  assert.ok(state.held > 0, "never given back while a call runs on it");
  done(ticket, 10);
  await sleep(SETTINGS.idleMs * 3);
  assert.equal(state.held, 0);
  assert.equal(state.closed.length, closed + 1);
});

Deno.test("leases: with Upstash, a call the limiter refuses holds nothing and asks the database nothing", async () => {
  const { store, state } = fakeStore({ balance: 1e9, plan: { ...ROOMY, rpm: 3 }, upstash: true });
  const book = createLeaseBook(store, SETTINGS);
  const remaining: string[] = [];
  for (let i = 0; i < 3; i++) {
    const t = await book.admit(USER, CALL);
    remaining.push(t.limitHeaders["x-ratelimit-remaining-requests"]);
    done(t, 10);
  }
  assert.deepEqual(remaining, ["2", "1", "0"], "X-RateLimit-Remaining-Requests counts down exactly");
  const leaseCalls = state.requests.length;
  const e = await refusal(book.admit(USER, CALL));
  assert.equal(e.status, 429);
  assert.equal(e.headers?.["retry-after"] !== undefined, true);
  assert.equal(state.requests.length, leaseCalls, "no lease call for a refused call");
  assert.equal(state.held, 0);
});

Deno.test("leases: Upstash is never asked for more than half of what the window had left", async () => {
  const { store, state } = fakeStore({ balance: 1e12, plan: { ...ROOMY, rpm: 400 }, upstash: true });
  const book = createLeaseBook(store, SETTINGS);
  for (let i = 0; i < 300; i++) {
    const before = 400 - (state.windowHits.get(`gw:rpm:${USER}`) ?? 0);
    const takes = state.takes.length;
    const t = await book.admit(USER, CALL).catch((e) => e);
    if (t instanceof HttpError) break;
    for (const take of state.takes.slice(takes).filter((x) => x.key.startsWith("gw:rpm"))) {
      assert.ok(take.cost === 1 || take.cost <= before / 2, `asked ${take.cost} with ${before} left`);
    }
    done(t, 10);
  }
  assert.ok((state.windowHits.get(`gw:rpm:${USER}`) ?? 0) <= 400, "never over the limit");
  book.closeAll();
});

Deno.test("leases: the plan is read again after planTtlMs — a model taken off the plan is refused", async () => {
  const { store, state } = fakeStore({ balance: 1e12, plan: ROOMY, upstash: true });
  const book = createLeaseBook(store, { ...SETTINGS, planTtlMs: 100 });
  for (let i = 0; i < 5; i++) done(await book.admit(USER, CALL), 10);
  state.plan = { ...ROOMY, models: ["other"] };
  await sleep(150);
  const e = await refusal(book.admit(USER, CALL));
  assert.equal(e.status, 403);
  book.closeAll();
});

Deno.test("leases: which models a plan may call is the lease call's to say — a model not yet admitted is asked about, and its refusal holds", async () => {
  const { store, state } = fakeStore({
    balance: 1e12,
    plan: { ...ROOMY, models: [CALL.model] },
    upstash: false,
  });
  const book = createLeaseBook(store, SETTINGS);
  done(await book.admit(USER, CALL), 10);
  const asked = state.requests.length;
  // Within the plan's TTL, a model the instance has no lease answer for goes to the store, which refuses it.
  const other = { ...CALL, model: "not-on-the-plan" };
  const e = await refusal(book.admit(USER, other));
  assert.equal(e.status, 403);
  assert.equal(state.requests.length, asked + 1, "the store was asked about the other model");
  assert.equal(state.requests.at(-1)!.model, "not-on-the-plan");
  // And it stays refused: nothing about it is kept to admit from memory.
  assert.equal((await refusal(book.admit(USER, other))).status, 403);
  assert.equal(state.requests.length, asked + 2);
  book.closeAll();
});

Deno.test("leases: a refused renewal refuses every call waiting on it, and the next call asks again", async () => {
  const { store, state } = fakeStore({ balance: 50, plan: ROOMY, upstash: false, latencyMs: 2 });
  const book = createLeaseBook(store, SETTINGS);
  const results = await Promise.allSettled(Array.from({ length: 5 }, () => book.admit(USER, CALL)));
  assert.ok(results.every((r) => r.status === "rejected" && (r.reason as HttpError).status === 402));
  state.balance = 1_000;
  const t = await book.admit(USER, CALL);
  assert.equal(t.hold, HOLD);
  done(t, HOLD);
});

Deno.test("leases: GATEWAY_LEASE_* settings are read from the env, and a bad value stops the boot", () => {
  const names = [
    "GATEWAY_LEASE_MAX_CALLS",
    "GATEWAY_LEASE_IDLE_MS",
    "GATEWAY_PLAN_TTL_MS",
    "UPSTREAM_TIMEOUT_MS",
  ];
  const saved = Object.fromEntries(names.map((n) => [n, Deno.env.get(n)]));
  try {
    for (const n of names) Deno.env.delete(n);
    assert.deepEqual(gatewayOptionsFromEnv().leases, {}, "unset: the defaults");
    Deno.env.set("GATEWAY_LEASE_MAX_CALLS", "1");
    Deno.env.set("GATEWAY_LEASE_IDLE_MS", "250");
    Deno.env.set("GATEWAY_PLAN_TTL_MS", "0");
    assert.deepEqual(gatewayOptionsFromEnv().leases, { maxCalls: 1, idleMs: 250, planTtlMs: 0 });
    Deno.env.set("GATEWAY_LEASE_MAX_CALLS", "0");
    assert.throws(() => gatewayOptionsFromEnv(), /GATEWAY_LEASE_MAX_CALLS must be a whole number >= 1/);
    Deno.env.set("GATEWAY_LEASE_MAX_CALLS", "4");
    Deno.env.set("UPSTREAM_TIMEOUT_MS", "ten minutes");
    assert.throws(() => gatewayOptionsFromEnv(), /UPSTREAM_TIMEOUT_MS/);
  } finally {
    for (const [n, v] of Object.entries(saved)) v === undefined ? Deno.env.delete(n) : Deno.env.set(n, v);
  }
});

Deno.test("leases: with GATEWAY_LEASE_MAX_CALLS=1 every call is admitted on its own", async () => {
  const { store, state } = fakeStore({ balance: 1e12, plan: ROOMY, upstash: true });
  const book = createLeaseBook(store, { ...SETTINGS, maxCalls: 1 });
  for (let i = 0; i < 20; i++) done(await book.admit(USER, CALL), 10);
  assert.equal(state.requests.filter((r) => !r.ahead).length, 20);
  assert.ok(state.requests.every((r) => r.calls === 1));
  assert.equal(state.held, 0);
});

Deno.test("leases: at shutdown a lease goes back only once its running calls end, and never under a used id", async () => {
  const { store, state } = fakeStore({ balance: 1e12, plan: ROOMY, upstash: false });
  const book = createLeaseBook(store, SETTINGS);
  for (let i = 0; i < 4; i++) done(await book.admit(USER, CALL), 10); // a lease of several calls, kept
  const running = await book.admit(USER, CALL);
  const closedBefore = state.closed.length;
  book.closeAll();
  assert.equal(state.closed.length, closedBefore, "not while a call runs on it");
  assert.ok(state.held > 0);
  done(running, 10);
  assert.equal(state.closed.length, closedBefore + 1, "as soon as it ended, without waiting for idleMs");
  assert.equal(state.held, 0);
  // A call that still arrives gets a lease of its own, given back when it ends.
  done(await book.admit(USER, CALL), 10);
  assert.equal(state.held, 0);
  assert.equal(new Set(state.closed).size, state.closed.length, "no lease id is given back twice");
  const ids = state.requests.map((r) => r.leaseId);
  const opened = ids.filter((id, i) => ids.indexOf(id) === i);
  assert.deepEqual(
    opened.filter((id) => state.closed.indexOf(id) < 0),
    [],
    "every lease opened was given back",
  );
});

Deno.test("leases: giving leases back at shutdown ends even when the database does not answer", async () => {
  // A process of its own: the settlement queue and the database pool are per process.
  const batch = new URL("../_shared/gateway/settlement/batch.ts", import.meta.url).href;
  const script = `
    const { closeLease, flushSettlements } = await import(${JSON.stringify(batch)});
    closeLease("lease:test:${USER}:1", "${USER}");
    const started = performance.now();
    await flushSettlements();
    console.log(JSON.stringify({ ms: performance.now() - started }));
    Deno.exit(0);`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--quiet", script],
    env: { SUPABASE_DB_URL: "postgres://postgres:postgres@127.0.0.1:9/postgres", PGCONNECT_TIMEOUT: "2" },
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(20_000),
  }).output();
  const stdout = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1) ?? "";
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  assert.ok(JSON.parse(stdout).ms < 15_000, stdout);
});
