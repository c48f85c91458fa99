// Nothing is sold below cost: with the seeded plans, packs, platform rate and prices, what a buyer pays for a
// platform token (net of Stripe's card fee) is more than what a platform token costs us on every model the plan
// or pack may call, for calls of every shape (input only, output only, cached, cache writes, reasoning, tiny and
// huge ones, where rounding weighs most). Costs come from the test's own oracle (tests/_lib/charges.ts), never
// from the database's functions. And the README's tables of what a token buys are the database's.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { chargeOf, type Price, rateInForce, type Tokens, tokens } from "./_lib/charges.ts";
import { testSql } from "./_lib/db.ts";

const sql = testSql(2);
const STRIPE_FEE = { percent: 2.9, fixedCents: 30 };

/** Calls of every shape: what one platform token of each costs us is what matters. */
const SHAPES: Tokens[] = [
  tokens({ input: 1 }),
  tokens({ output: 1 }),
  tokens({ input: 1, output: 1 }),
  tokens({ input: 1_000_000 }),
  tokens({ output: 1_000_000 }),
  tokens({ input: 1_000_000, cached: 900_000 }),
  tokens({ input: 200_000, cacheWrite: 200_000 }),
  tokens({ input: 5_000, output: 30_000, reasoning: 25_000 }),
  tokens({ input: 123_457, cached: 1_111, cacheWrite: 2_222, output: 3_333, reasoning: 444 }),
];

Deno.test("every paid plan and pack sells a platform token for more than it costs us on every model it may call", async () => {
  const rate = await rateInForce(sql);
  const rows = await sql`
    select provider, model, id::int, input_micro_usd_per_mtok::text as input,
           cached_input_micro_usd_per_mtok::text as cached, cache_write_micro_usd_per_mtok::text as cache_write,
           output_micro_usd_per_mtok::text as output, reasoning_micro_usd_per_mtok::text as reasoning
      from public.model_pricing
     where effective_from <= now() and (effective_to is null or effective_to > now()) and model not like '%test%'`;
  const big = (v: string | null) => (v === null ? null : BigInt(v));
  const models = rows.map((r) => ({
    model: r.model as string,
    price: {
      id: r.id,
      input: BigInt(r.input),
      cached: big(r.cached),
      cacheWrite: big(r.cache_write),
      output: BigInt(r.output),
      reasoning: big(r.reasoning),
    } satisfies Price,
  }));
  assert.ok(models.length >= 10, "the seeded prices");
  /** The most a platform token costs us on these models, in micro-dollars (exact: cost / tokens billed). */
  const worst = (allowed: string[]) => {
    let max = 0;
    for (const m of models.filter((m) => allowed.length === 0 || allowed.includes(m.model))) {
      for (const shape of SHAPES) {
        const c = chargeOf(m.price, rate, shape);
        // A call that bills nothing (output only, on an embedding model: its output is free) sells no token.
        if (c.platformTokens === 0) continue;
        const exact = Number(
          BigInt(Math.max(shape.input - shape.cached - shape.cacheWrite, 0)) * m.price.input +
            BigInt(shape.cached) * (m.price.cached ?? m.price.input) +
            BigInt(shape.cacheWrite) * (m.price.cacheWrite ?? m.price.input) +
            BigInt(shape.output - shape.reasoning) * m.price.output +
            BigInt(shape.reasoning) * (m.price.reasoning ?? m.price.output),
        ) / 1e6;
        max = Math.max(max, exact / c.platformTokens);
      }
    }
    return max;
  };
  /** Micro-dollars a buyer pays per platform token, net of the card fee. */
  const net = (cents: number, platformTokens: number) =>
    (cents * (1 - STRIPE_FEE.percent / 100) - STRIPE_FEE.fixedCents) * 10_000 / platformTokens;

  const plans = await sql`select id, monthly_token_allowance::float8 as allowance, price_monthly_cents,
                                 price_yearly_cents, allowed_models
                            from public.subscription_plans where is_active and price_monthly_cents > 0`;
  assert.ok(plans.length >= 2, "the paid plans");
  for (const p of plans) {
    const cost = worst(p.allowed_models);
    assert.ok(cost > 0 && cost <= Number(rate) / 1e6, `${p.id}: a platform token costs at most the rate`);
    const monthly = net(p.price_monthly_cents, p.allowance);
    assert.ok(
      monthly > cost,
      `${p.id} monthly: sold at ${monthly.toFixed(3)} µ$, costs up to ${cost.toFixed(3)} µ$`,
    );
    if (p.price_yearly_cents) {
      const yearly = net(p.price_yearly_cents, p.allowance * 12);
      assert.ok(
        yearly > cost,
        `${p.id} yearly: sold at ${yearly.toFixed(3)} µ$, costs up to ${cost.toFixed(3)} µ$`,
      );
    }
  }
  const packs =
    await sql`select id, tokens::float8 as tokens, price_cents from public.token_packs where is_active`;
  assert.ok(packs.length >= 1, "the packs");
  const cost = worst([]);
  for (const p of packs) {
    const sold = net(p.price_cents, p.tokens);
    assert.ok(sold > cost, `${p.id}: sold at ${sold.toFixed(3)} µ$, costs up to ${cost.toFixed(3)} µ$`);
  }
});

Deno.test("the README's tables of what a platform token buys are what the database says (npm run docs:tokens)", async () => {
  const out = await new Deno.Command("npm", {
    args: ["run", "-s", "docs:tokens", "--", "--check"],
    cwd: fileURLToPath(new URL("../../..", import.meta.url)),
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
});

Deno.test("pricing test teardown", async () => {
  await sql.end();
});
