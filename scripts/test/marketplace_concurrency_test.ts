// The marketplace under real concurrency, each call made as PostgREST makes it (a transaction on its own connection:
// role authenticated and the user's claims set locally, then the RPC or the update):
//   - the plan's cap is race-free: with one slot left, 20 concurrent hires give exactly one (free plan, and pro with
//     9 of 10 taken); 20 concurrent hires of one employee by one user give one hire; rehires and reactivations by
//     update racing for the last slot give one active hire, and never a deadlock;
//   - 50 concurrent hirers of one popular employee all succeed and are counted exactly, without waiting on one
//     another (timed against the same hires made to wait on one lock, as a shared counter row would; printed, not
//     asserted);
//   - a property (fast-check): random mixes of hires, deactivations, rehires, reactivations, ratings, upgrades, new
//     versions and folds, run concurrently over several users, end with analytics read live (before folding) and the
//     table after the fold job's function equal to private.recompute_employee_analytics(), and no user over their cap.
// DB_URL is the database (default: the stack's); the test makes its own category, employees and users and removes them.
import assert from "node:assert/strict";
import fc from "npm:fast-check@4.10.2";
import postgres from "npm:postgres@3.4.9";

const DB_URL = Deno.env.get("DB_URL") ?? "postgresql://postgres:postgres@127.0.0.1:54322/postgres";
const POOL_SIZE = 50;
const MODEL = { provider: "openai", model: "gpt-4o-mini" }; // priced by the gateway's reference data

type Sql = postgres.Sql;
type Tx = postgres.TransactionSql;
type Hire = { id: string; is_active: boolean; pinned_version: number };

const connect = (max: number) =>
  postgres(DB_URL, {
    max,
    idle_timeout: 5,
    connect_timeout: 10,
    onnotice: () => {},
    connection: { application_name: "marketplace_concurrency_test" },
  });

/** The error code a refusal carries: the `code` of a PGRST body (hire_limit_reached, …), else the SQLSTATE. */
function refusal(reason: unknown): string {
  const e = reason as { code?: string; message?: string } | null;
  if (e?.code === "PGRST" && e.message) return (JSON.parse(e.message) as { code: string }).code;
  return e?.code ?? String(reason);
}

/** One request as PostgREST runs it: its own transaction, role authenticated and the user's claims, then `fn`. */
async function asUser<T>(sql: Sql, userId: string, fn: (tx: Tx) => Promise<T>, gate?: number): Promise<T> {
  return await sql.begin(async (tx) => {
    if (gate !== undefined) await tx`select pg_advisory_xact_lock_shared(${gate}::bigint)`;
    const claims = JSON.stringify({ sub: userId, role: "authenticated", aud: "authenticated" });
    await tx`select set_config('role', 'authenticated', true), set_config('request.jwt.claims', ${claims}, true)`;
    return await fn(tx);
  }) as T;
}

const hire = (tx: Tx, slug: string) =>
  tx<Hire[]>`select h.id, h.is_active, h.pinned_version from public.hire_employee(${slug}) h`.then((r) =>
    r[0]
  );

/**
 * Runs the calls at the same instant: each first waits on a shared advisory lock that a gate connection holds, which
 * opens once every call that fits in the pool is waiting on it. Without the gate they would trickle in one by one.
 */
async function concurrently<T>(
  calls: ((gate: number) => Promise<T>)[],
): Promise<{ results: PromiseSettledResult<T>[]; ms: number }> {
  const gate = connect(1);
  const key = 1 + Math.floor(Math.random() * 2 ** 30);
  try {
    await gate`select pg_advisory_lock(${key}::bigint)`;
    const settled = Promise.allSettled(calls.map((call) => call(key)));
    const expected = Math.min(POOL_SIZE, calls.length);
    const deadline = Date.now() + 20_000;
    for (;;) {
      const [{ n }] = await gate<{ n: number }[]>`
        select count(*)::int as n from pg_locks
         where locktype = 'advisory' and classid = 0 and objid::bigint = ${key}::bigint and not granted`;
      if (n >= expected) break;
      if (Date.now() > deadline) throw new Error(`only ${n} of ${expected} calls reached the start gate`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const started = performance.now();
    await gate`select pg_advisory_unlock(${key}::bigint)`;
    const results = await settled;
    return { results, ms: performance.now() - started };
  } finally {
    await gate.end({ timeout: 5 });
  }
}

/** A catalog and users of the test's own, removed at the end (users first: their hires and ratings go with them). */
class Fixture {
  readonly run = crypto.randomUUID().slice(0, 8);
  readonly category = `test-conc-${this.run}`;
  readonly users: string[] = [];
  readonly employees: string[] = [];
  readonly ids = new Map<string, string>();
  constructor(readonly sql: Sql) {}

  async setUp(): Promise<void> {
    await this
      .sql`insert into public.ai_employee_categories (slug, name) values (${this.category}, 'Concurrency test')`;
  }

  async employee(name: string): Promise<string> {
    const slug = `${this.category}-${name}`;
    await this.sql`
      insert into public.ai_employees (slug, name, role, category, department, level, status, short_description,
                                       provider, model, system_prompt)
      values (${slug}, ${name}, 'Test role', ${this.category}, 'Test', 'mid', 'available', 'A test employee',
              ${MODEL.provider}, ${MODEL.model}, ${`Test prompt of ${name}`})
      returning id`.then(([row]) => this.ids.set(slug, row.id));
    this.employees.push(slug);
    return slug;
  }

  async user(plan: string): Promise<string> {
    const [{ id }] = await this.sql<{ id: string }[]>`
      insert into auth.users (id, aud, role, email, email_confirmed_at, raw_app_meta_data, raw_user_meta_data)
      values (gen_random_uuid(), 'authenticated', 'authenticated', ${`${this.category}-${this.users.length}@example.com`},
              now(), '{"provider":"email"}', '{}')
      returning id`;
    await this.sql`update public.users set plan = ${plan} where id = ${id}`;
    this.users.push(id);
    return id;
  }

  async activeHires(userId: string): Promise<number> {
    const [{ n }] = await this.sql<{ n: number }[]>`
      select count(*)::int as n from public.purchased_employees where user_id = ${userId} and is_active`;
    return n;
  }

  /** Employees (by slug) whose live numbers, or (`folded`) table numbers, differ from the recomputation. */
  async analyticsDifferences(maintained: "live" | "folded"): Promise<string[]> {
    const rows = await this.sql<{ slug: string; maintained: string; recomputed: string }[]>`
      with ids as (select id from public.ai_employees where slug = any(${this.employees})),
      r as (select * from private.recompute_employee_analytics() where employee_id in (select id from ids)),
      m as (select * from private.live_employee_analytics() where ${maintained} = 'live' and employee_id in (select id from ids)
            union all
            select * from public.employee_analytics where ${maintained} = 'folded' and employee_id in (select id from ids))
      select e.slug, (to_jsonb(m) - 'folded_at')::text as maintained, (to_jsonb(r) - 'folded_at')::text as recomputed
        from r join public.ai_employees e on e.id = r.employee_id left join m using (employee_id)
       where (to_jsonb(m) - 'folded_at') is distinct from (to_jsonb(r) - 'folded_at')`;
    return rows.map((r) => `${r.slug}: ${r.maintained} <> ${r.recomputed}`);
  }

  async tearDown(): Promise<void> {
    if (this.users.length) await this.sql`delete from auth.users where id = any(${this.users}::uuid[])`;
    await this.sql`delete from public.ai_employees where category = ${this.category}`;
    await this.sql`delete from public.ai_employee_categories where slug = ${this.category}`;
  }
}

async function withFixture(fn: (f: Fixture, sql: Sql) => Promise<void>): Promise<void> {
  const sql = connect(POOL_SIZE);
  const f = new Fixture(sql);
  try {
    await f.setUp();
    await fn(f, sql);
  } finally {
    await f.tearDown().catch((e) => console.error("teardown:", e));
    await sql.end({ timeout: 5 });
  }
}

Deno.test("20 concurrent hires with one slot left (free plan): exactly one wins, 19 are hire_limit_reached", async () => {
  await withFixture(async (f, sql) => {
    const slugs = await Promise.all(Array.from({ length: 20 }, (_, i) => f.employee(`free-${i}`)));
    const user = await f.user("free");
    const { results } = await concurrently(
      slugs.map((slug) => (gate) => asUser(sql, user, (tx) => hire(tx, slug), gate)),
    );
    const won = results.filter((r) => r.status === "fulfilled");
    const refused = results.flatMap((r) => r.status === "rejected" ? [refusal(r.reason)] : []);
    assert.equal(won.length, 1, `exactly one hire wins (refusals: ${refused.join(", ")})`);
    assert.deepEqual([...new Set(refused)], ["hire_limit_reached"], "the others are hire_limit_reached");
    assert.equal(await f.activeHires(user), 1, "the user has one active hire");
    assert.deepEqual(await f.analyticsDifferences("live"), [], "and exactly one hire is counted");
  });
});

Deno.test("20 concurrent hires with one slot left (pro plan, 9 of 10 taken): exactly one wins", async () => {
  await withFixture(async (f, sql) => {
    const slugs = await Promise.all(Array.from({ length: 29 }, (_, i) => f.employee(`pro-${i}`)));
    const user = await f.user("pro");
    for (const slug of slugs.slice(0, 9)) await asUser(sql, user, (tx) => hire(tx, slug));
    const { results } = await concurrently(
      slugs.slice(9).map((slug) => (gate) => asUser(sql, user, (tx) => hire(tx, slug), gate)),
    );
    const refused = results.flatMap((r) => r.status === "rejected" ? [refusal(r.reason)] : []);
    assert.equal(results.length - refused.length, 1, `exactly one wins (refusals: ${refused.length})`);
    assert.deepEqual([...new Set(refused)], ["hire_limit_reached"]);
    assert.equal(await f.activeHires(user), 10, "the user has exactly the plan's 10 active hires");
  });
});

Deno.test("20 concurrent hires of one employee by one user give one hire, returned to all 20", async () => {
  await withFixture(async (f, sql) => {
    const slug = await f.employee("same");
    const user = await f.user("free");
    const { results } = await concurrently(
      Array.from({ length: 20 }, () => (gate: number) => asUser(sql, user, (tx) => hire(tx, slug), gate)),
    );
    const failures = results.flatMap((r) => r.status === "rejected" ? [refusal(r.reason)] : []);
    assert.deepEqual(failures, [], "hiring is idempotent: no call fails, none is a unique violation");
    const ids = new Set(results.map((r) => (r as PromiseFulfilledResult<Hire>).value.id));
    assert.equal(ids.size, 1, "every call returns the same hire");
    assert.deepEqual(await f.analyticsDifferences("live"), [], "counted once");
  });
});

Deno.test("rehires and reactivations by update racing for the last slot: one active hire, no deadlock", async () => {
  await withFixture(async (f, sql) => {
    const [a, b] = [await f.employee("react-a"), await f.employee("react-b")];
    const user = await f.user("free");
    // Two inactive hires (made and deactivated as the user would).
    for (const slug of [a, b]) {
      await asUser(sql, user, (tx) => hire(tx, slug));
      await asUser(
        sql,
        user,
        (tx) => tx`update public.purchased_employees set is_active = false where is_active`,
      );
    }
    const calls = Array.from({ length: 20 }, (_, i) => (gate: number) =>
      asUser(sql, user, async (tx) => {
        if (i % 2 === 0) return (await hire(tx, i % 4 === 0 ? a : b)).is_active;
        const rows = await tx`
          update public.purchased_employees h set is_active = true
            from public.ai_employees e where e.id = h.employee_id and e.slug = ${i % 4 === 1 ? a : b}
          returning h.id`;
        return rows.length === 1;
      }, gate));
    const { results } = await concurrently(calls);
    const refused = results.flatMap((r) => r.status === "rejected" ? [refusal(r.reason)] : []);
    assert.ok(!refused.includes("40P01"), `no deadlock (refusals: ${refused.join(", ")})`);
    assert.deepEqual(
      [...new Set(refused)].filter((c) => c !== "hire_limit_reached"),
      [],
      "only hire_limit_reached",
    );
    assert.equal(await f.activeHires(user), 1, "exactly one of the two hires is active again");
    assert.deepEqual(await f.analyticsDifferences("live"), [], "the numbers are exact");
  });
});

Deno.test("50 concurrent hirers of one employee: all hired, counted exactly, none waiting on another", async () => {
  await withFixture(async (f, sql) => {
    const slug = await f.employee("popular");
    const users: string[] = [];
    for (let i = 0; i < 200; i++) users.push(await f.user("pro"));
    // From the start gate to the commit: one hire as PostgREST makes it.
    const timeOne = async (gate: number, user: string, sharedLock?: number) => {
      let started = 0;
      await sql.begin(async (tx) => {
        await tx`select pg_advisory_xact_lock_shared(${gate}::bigint)`;
        started = performance.now();
        const claims = JSON.stringify({ sub: user, role: "authenticated", aud: "authenticated" });
        await tx`select set_config('role', 'authenticated', true), set_config('request.jwt.claims', ${claims}, true)`;
        // The design we did not choose: one row per employee updated by every hire would hold its lock to the
        // commit; an exclusive transaction lock on one key is exactly that wait.
        if (sharedLock !== undefined) await tx`select pg_advisory_xact_lock(${sharedLock}::bigint)`;
        return await hire(tx, slug);
      });
      return performance.now() - started;
    };
    // Every pool connection open and warm (hire_employee compiled and planned in it) before timing.
    const warmUp = await f.employee("warm-up");
    await concurrently(
      users.slice(0, 50).map((u) => (gate) => asUser(sql, u, (tx) => hire(tx, warmUp), gate)),
    );

    const lockKey = 1 + Math.floor(Math.random() * 2 ** 30);
    const rounds: { design: string; ms: number; calls: number[] }[] = [];
    for (
      const [round, design] of ["delta rows", "one shared lock", "delta rows", "one shared lock"].entries()
    ) {
      const batch = users.slice(round * 50, round * 50 + 50);
      const { results, ms } = await concurrently(
        batch.map((u) => (gate) => timeOne(gate, u, design === "one shared lock" ? lockKey : undefined)),
      );
      const failures = results.flatMap((r) => r.status === "rejected" ? [refusal(r.reason)] : []);
      assert.deepEqual(failures, [], `every hire of round ${round + 1} succeeds`);
      rounds.push({ design, ms, calls: results.map((r) => (r as PromiseFulfilledResult<number>).value) });
      if (round === 0) {
        const [{ hire_count, active_hires }] = await sql<{ hire_count: number; active_hires: number }[]>`
          select a.hire_count::int, a.active_hires::int from private.live_employee_analytics() a
            join public.ai_employees e on e.id = a.employee_id where e.slug = ${slug}`;
        assert.deepEqual(
          { hire_count, active_hires },
          { hire_count: 50, active_hires: 50 },
          "all 50 counted",
        );
        assert.deepEqual(await f.analyticsDifferences("live"), []);
      }
    }
    const p = (xs: number[], q: number) =>
      [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * q))];
    for (const r of rounds) {
      console.log(
        `50 concurrent hires of one employee, ${r.design.padEnd(15)}: ${
          r.ms.toFixed(0).padStart(4)
        } ms for all 50; ` +
          `each p50 ${p(r.calls, 0.5).toFixed(1)} ms, p95 ${p(r.calls, 0.95).toFixed(1)} ms`,
      );
    }
    assert.deepEqual(await f.analyticsDifferences("live"), [], "200 hires, still exact");
  });
});

// ------------------------------------------------------------------------------------------- the property
type Command =
  | {
    kind: "hire" | "deactivate" | "reactivate" | "rate" | "unrate" | "upgrade";
    user: number;
    employee: number;
    stars: number;
  }
  | { kind: "new_version" | "toggle_retired"; employee: number }
  | { kind: "fold" };

const USERS = 5;
const EMPLOYEES = 4;
const command: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 12,
    arbitrary: fc.record({
      kind: fc.constantFrom(
        "hire",
        "hire",
        "deactivate",
        "reactivate",
        "rate",
        "rate",
        "unrate",
        "upgrade",
      ) as fc.Arbitrary<
        "hire" | "deactivate" | "reactivate" | "rate" | "unrate" | "upgrade"
      >,
      user: fc.nat(USERS - 1),
      employee: fc.nat(EMPLOYEES - 1),
      stars: fc.integer({ min: 1, max: 5 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant("new_version" as const), employee: fc.nat(EMPLOYEES - 1) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant("toggle_retired" as const), employee: fc.nat(EMPLOYEES - 1) }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: "fold" as const }) },
);

/** What a command does, as the client (or operator, or the job) does it. */
async function apply(sql: Sql, f: Fixture, users: string[], c: Command, gate: number): Promise<void> {
  if (c.kind === "fold") {
    await sql.begin(async (tx) => {
      await tx`select pg_advisory_xact_lock_shared(${gate}::bigint)`;
      await tx`select private.fold_employee_analytics()`;
    });
    return;
  }
  const slug = f.employees[c.employee];
  if (!("user" in c)) {
    await sql.begin(async (tx) => {
      await tx`select pg_advisory_xact_lock_shared(${gate}::bigint)`;
      if (c.kind === "new_version") {
        await tx`update public.ai_employees set system_prompt = ${`Prompt ${crypto.randomUUID()}`} where slug = ${slug}`;
      } else {
        await tx`update public.ai_employees
                    set status = case status when 'retired' then 'available' else 'retired' end where slug = ${slug}`;
      }
    });
    return;
  }
  const user = users[c.user];
  await asUser(sql, user, async (tx) => {
    const employee = f.ids.get(slug)!;
    switch (c.kind) {
      case "hire":
        await hire(tx, slug);
        break;
      case "deactivate":
        await tx`update public.purchased_employees set is_active = false where employee_id = ${employee}`;
        break;
      case "reactivate":
        await tx`update public.purchased_employees set is_active = true where employee_id = ${employee}`;
        break;
      case "rate":
        await tx`insert into public.employee_ratings (user_id, employee_id, stars) values (${user}, ${employee}, ${c.stars})
                 on conflict (user_id, employee_id) do update set stars = excluded.stars`;
        break;
      case "unrate":
        await tx`delete from public.employee_ratings where employee_id = ${employee}`;
        break;
      case "upgrade":
        await tx`select public.upgrade_hired_employee(id) from public.purchased_employees where employee_id = ${employee}`;
        break;
    }
  }, gate);
}

/** Refusals a random mix may meet; anything else fails the property. */
const EXPECTED_REFUSALS = new Set(["hire_limit_reached", "employee_retired", "not_hired"]);

Deno.test("property: random concurrent mixes end with analytics equal to the recomputation, live and folded", async () => {
  await withFixture(async (f, sql) => {
    for (let i = 0; i < EMPLOYEES; i++) await f.employee(`prop-${i}`);
    // Caps of 1, 10 and none: refusals happen, and every plan's rule is exercised.
    const users: string[] = [];
    for (let i = 0; i < USERS; i++) users.push(await f.user(["free", "pro", "max", "free", "pro"][i]));
    const caps: Record<string, number> = { free: 1, pro: 10, max: 100 };
    let runs = 0, applied = 0, refused = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(command, { minLength: 5, maxLength: 40 }), async (commands) => {
        runs++;
        const { results } = await concurrently(commands.map((c) => (gate) => apply(sql, f, users, c, gate)));
        const unexpected = results.flatMap((r, i) =>
          r.status === "rejected" && !EXPECTED_REFUSALS.has(refusal(r.reason))
            ? [`${JSON.stringify(commands[i])}: ${refusal(r.reason)} ${(r.reason as Error).message}`]
            : []
        );
        assert.deepEqual(unexpected, [], "no command fails but by an expected refusal (no deadlock, no 500)");
        refused += results.filter((r) => r.status === "rejected").length;
        applied += results.filter((r) => r.status === "fulfilled").length;

        assert.deepEqual(
          await f.analyticsDifferences("live"),
          [],
          "before folding: live numbers = recomputation",
        );
        await sql`select private.fold_employee_analytics()`;
        assert.deepEqual(
          await f.analyticsDifferences("folded"),
          [],
          "after the fold: the table = recomputation",
        );
        assert.deepEqual(await f.analyticsDifferences("live"), [], "and the live numbers still are");
        for (const [i, user] of users.entries()) {
          const plan = ["free", "pro", "max", "free", "pro"][i];
          assert.ok(await f.activeHires(user) <= caps[plan], `user ${i} (${plan}) is within the cap`);
        }
      }),
      { numRuns: 40 },
    );
    console.log(`property: ${runs} runs, ${applied} commands applied, ${refused} refused as expected`);
  });
});
