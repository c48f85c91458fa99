// What a call may cost before it runs, from what it asks for and the plan and prices in force: its output cap,
// the raw tokens the tokens-per-minute limit counts, and its hold in platform tokens (SQL's private._hold_tokens,
// repeated here for calls admitted from memory).

/** The plan as the last lease call read it. */
export type PlanInfo = {
  plan: string;
  maxOutput: number;
  maxInput: number;
  rpm: number;
  tpm: number;
};

/** A model's prices and the platform rate as the last lease call read them (micro-dollars per million tokens). */
export type PriceInfo = {
  input: number;
  cacheWrite: number | null;
  output: number;
  reasoning: number | null;
  rate: number;
  requestFee: number;
  at: number;
};

/** What a call asks for, as the proxy describes it before admission. */
export type CallShape = {
  model: string;
  inputEstimate: number;
  /** The max output it asks for; null: the plan's max; 0: none (see maxOutputOf). */
  requestedOutput: number | null;
  choices: number;
  inputUnbounded: boolean;
  searchContextSize: string | null;
};

/**
 * The call's output cap: what it asks for, at most the plan's; null asks for the plan's max, 0 for no output at all
 * (embeddings and token counts). SQL's private._max_output_tokens, the same rule (a table-driven test holds them
 * together).
 */
export const maxOutputOf = (plan: PlanInfo, call: CallShape) =>
  Math.min(Math.max(call.requestedOutput ?? plan.maxOutput, 0), plan.maxOutput);

/** The input a call is held for: its estimate, or the plan's max input when it cannot be measured. */
const inputOf = (plan: PlanInfo, call: CallShape) =>
  call.inputUnbounded ? Math.max(call.inputEstimate, plan.maxInput) : Math.max(call.inputEstimate, 0);

/** The raw tokens a call can use (what the tokens-per-minute limit counts). */
export const callTokens = (plan: PlanInfo, call: CallShape) =>
  inputOf(plan, call) + maxOutputOf(plan, call) * Math.max(call.choices, 1);

/**
 * The most a call can cost, in platform tokens: SQL's private._hold_tokens, computed here for calls admitted from
 * memory (exact integers; a table-driven test holds the two together): the input at the dearer of the input and
 * cache-write prices, every choice's max output at the dearer of the output and reasoning prices, the request
 * fee, all divided by the rate and rounded up.
 */
export function holdTokens(plan: PlanInfo, price: Omit<PriceInfo, "at">, call: CallShape): number {
  const inputPrice = BigInt(Math.max(price.input, price.cacheWrite ?? price.input));
  const outputPrice = BigInt(Math.max(price.output, price.reasoning ?? price.output));
  const numerator = BigInt(inputOf(plan, call)) * inputPrice +
    BigInt(maxOutputOf(plan, call)) * BigInt(Math.max(call.choices, 1)) * outputPrice +
    BigInt(price.requestFee) * 1_000_000n;
  const rate = BigInt(price.rate);
  return Number((numerator + rate - 1n) / rate);
}
