// What a call must be billed, computed here from the published prices and the platform rate, independently of
// the database's own functions (private._charge, private._hold_tokens), so the tests are an oracle for them:
//   cost            ceil((uncached input × input + cached × cached + cache writes × cache write
//                         + (output - reasoning) × output + reasoning × reasoning) / 1e6) + request fee   (µ$)
//   platform tokens ceil((that sum before rounding, in µ$ × 1e6) / rate), exactly (integers throughout)
import type { Sql } from "./db.ts";

export type Price = {
  id: number;
  input: bigint;
  cached: bigint | null;
  cacheWrite: bigint | null;
  output: bigint;
  reasoning: bigint | null;
};

export type Tokens = { input: number; cached: number; cacheWrite: number; output: number; reasoning: number };

export const tokens = (t: Partial<Tokens>): Tokens => ({
  input: 0,
  cached: 0,
  cacheWrite: 0,
  output: 0,
  reasoning: 0,
  ...t,
});

/** The model_pricing row in force now (exactly one). */
export async function priceInForce(sql: Sql, provider: string, model: string): Promise<Price> {
  const rows = await sql`
    select id::int, input_micro_usd_per_mtok::text as input, cached_input_micro_usd_per_mtok::text as cached,
           cache_write_micro_usd_per_mtok::text as cache_write, output_micro_usd_per_mtok::text as output,
           reasoning_micro_usd_per_mtok::text as reasoning
      from public.model_pricing
     where provider = ${provider} and model = ${model}
       and effective_from <= now() and (effective_to is null or effective_to > now())`;
  if (rows.length !== 1) {
    throw new Error(`expected one price in force for ${provider}/${model}, found ${rows.length}`);
  }
  const r = rows[0];
  const big = (v: string | null) => (v === null ? null : BigInt(v));
  return {
    id: r.id,
    input: BigInt(r.input),
    cached: big(r.cached),
    cacheWrite: big(r.cache_write),
    output: BigInt(r.output),
    reasoning: big(r.reasoning),
  };
}

/** The platform rate in force now: micro-dollars per million platform tokens. */
export async function rateInForce(sql: Sql): Promise<bigint> {
  const [r] = await sql`select micro_usd_per_mtok::text as rate from public.platform_token_rates
                         where effective_from <= now() and (effective_to is null or effective_to > now())`;
  return BigInt(r.rate);
}

/** A Perplexity-style request fee in force now (µ$), 0 when the model has none. */
export async function requestFee(sql: Sql, provider: string, model: string, size = "low"): Promise<bigint> {
  const rows = await sql`select micro_usd_per_request::text as fee from public.model_request_fees
                          where provider = ${provider} and model = ${model} and search_context_size = ${size}
                            and effective_from <= now() and (effective_to is null or effective_to > now())`;
  return rows.length ? BigInt(rows[0].fee) : 0n;
}

const ceilDiv = (a: bigint, b: bigint) => (a + b - 1n) / b;

/** What a call with these tokens is billed: its cost in micro-dollars and in platform tokens. */
export function chargeOf(
  price: Price,
  rate: bigint,
  t: Tokens,
  fee = 0n,
): { cost: number; platformTokens: number } {
  const uncached = BigInt(Math.max(t.input - t.cached - t.cacheWrite, 0));
  const sum = uncached * price.input + BigInt(t.cached) * (price.cached ?? price.input) +
    BigInt(t.cacheWrite) * (price.cacheWrite ?? price.input) +
    BigInt(Math.max(t.output - t.reasoning, 0)) * price.output +
    BigInt(t.reasoning) * (price.reasoning ?? price.output);
  // sum is in µ$ × 1e6 (prices are per million tokens); the fee in µ$.
  const total = sum + fee * 1_000_000n;
  return { cost: Number(ceilDiv(total, 1_000_000n)), platformTokens: Number(ceilDiv(total, rate)) };
}

/**
 * Test models priced at exactly the platform rate for input, cached input, cache writes, output and reasoning,
 * one per provider: a call to one costs one platform token per raw token, so a test can reason in tokens. Named
 * `unit-priced-test`; created once (idempotent), kept (their rows are harmless reference data).
 */
export const UNIT_MODEL = "unit-priced-test";
export async function ensureUnitModels(sql: Sql): Promise<string> {
  const rate = await rateInForce(sql);
  await sql`
    insert into public.model_pricing (provider, model, input_micro_usd_per_mtok, cached_input_micro_usd_per_mtok,
                                      cache_write_micro_usd_per_mtok, output_micro_usd_per_mtok,
                                      reasoning_micro_usd_per_mtok, effective_from)
    select p, ${UNIT_MODEL}, ${rate.toString()}::bigint, ${rate.toString()}::bigint, ${rate.toString()}::bigint,
           ${rate.toString()}::bigint, ${rate.toString()}::bigint, '2026-01-01T00:00:00Z'
      from unnest(array['openai', 'anthropic', 'google', 'perplexity']) as p
     where not exists (select 1 from public.model_pricing m where m.provider = p and m.model = ${UNIT_MODEL})
    on conflict do nothing`;
  return UNIT_MODEL;
}
