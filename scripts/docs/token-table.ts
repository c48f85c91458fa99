// npm run docs:tokens [-- --check]: the README's tables of what a platform token buys, generated from the
// database (the platform rate, the prices in force, the plans and packs), between the markers
//   <!-- platform-token-tables:start --> … <!-- platform-token-tables:end -->
// --check exits 1 when the README's tables are not what the database says (the test suite runs it).
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import postgres from "npm:postgres@3.4.9";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const README = join(ROOT, "README.md");
const START = "<!-- platform-token-tables:start -->";
const END = "<!-- platform-token-tables:end -->";
/** Stripe's standard card fee, what a sale costs before any token is used. */
export const STRIPE_FEE = { percent: 2.9, fixedCents: 30 };

const url = Deno.env.get("DB_URL") ?? "postgresql://postgres:postgres@127.0.0.1:54322/postgres";
const sql = postgres(url, { max: 1, prepare: false, onnotice: () => {} });

const [{ rate }] = await sql`select micro_usd_per_mtok::float8 as rate from public.platform_token_rates
                              where effective_from <= now() and (effective_to is null or effective_to > now())`;
const models = await sql`
  select provider, model, kind, input_micro_usd_per_mtok::float8 as input, output_micro_usd_per_mtok::float8 as output,
         coalesce(cached_input_micro_usd_per_mtok, input_micro_usd_per_mtok)::float8 as cached
    from public.model_pricing
   where effective_from <= now() and (effective_to is null or effective_to > now()) and model not like '%test%'
   order by provider, kind desc, output_micro_usd_per_mtok, model`;
const plans = await sql`
  select id, name, monthly_token_allowance::float8 as allowance, price_monthly_cents, price_yearly_cents
    from public.subscription_plans where is_active and price_monthly_cents > 0 order by sort_order`;
const packs = await sql`select id, name, tokens::float8 as tokens, price_cents from public.token_packs
                         where is_active order by sort_order`;
await sql.end();

const n = (x: number) => x >= 100 ? Math.round(x).toLocaleString("en-US") : x.toPrecision(3);
const dollars = (microUsdPerMillion: number) => `$${(microUsdPerMillion / 1e6).toFixed(2)}`;
/** Micro-dollars per million platform tokens paid for a sale of `cents` for `tokens`, net of Stripe's fee. */
const netPerMillion = (cents: number, tokens: number) =>
  ((cents * (1 - STRIPE_FEE.percent / 100) - STRIPE_FEE.fixedCents) * 10_000) / tokens * 1e6;

const lines: string[] = [START, ""];
lines.push(
  `One platform token is worth ${
    dollars(rate)
  } of provider cost per million (\`public.platform_token_rates\`). ` +
    "What one million platform tokens buy on each model, at its list price in force:",
  "",
  "| provider | model | input tokens | cached input tokens | output tokens |",
  "| --- | --- | --: | --: | --: |",
);
for (const m of models) {
  // An embedding model generates no tokens (its output price is 0) and caches nothing: only its input is priced.
  const embedding = m.kind === "embedding";
  lines.push(
    `| ${m.provider} | ${m.model}${embedding ? " (embeddings)" : ""} | ${n(rate / m.input * 1e6)} | ${
      embedding ? "—" : n(rate / m.cached * 1e6)
    } | ${embedding ? "—" : n(rate / m.output * 1e6)} |`,
  );
}
lines.push(
  "",
  `What buyers pay per million platform tokens, net of Stripe's card fee (${STRIPE_FEE.percent} % + ${STRIPE_FEE.fixedCents} ¢ a ` +
    `sale), against the ${dollars(rate)} a million cost at most on any model:`,
  "",
  "| sold as | tokens | price | net per million tokens | margin over cost |",
  "| --- | --: | --: | --: | --: |",
);
const row = (what: string, tokens: number, cents: number) => {
  const net = netPerMillion(cents, tokens);
  lines.push(
    `| ${what} | ${n(tokens)} | $${(cents / 100).toFixed(2)} | ${dollars(net)} | ${
      (net / rate).toFixed(2)
    }× |`,
  );
};
for (const p of plans) {
  row(`${p.name}, monthly`, p.allowance, p.price_monthly_cents);
  if (p.price_yearly_cents) row(`${p.name}, yearly (12 allowances)`, p.allowance * 12, p.price_yearly_cents);
}
for (const p of packs) row(`pack ${p.name}`, p.tokens, p.price_cents);
lines.push("", END);
const table = lines.join("\n");

const readme = await Deno.readTextFile(README);
const a = readme.indexOf(START), b = readme.indexOf(END);
if (a < 0 || b < 0) {
  console.error(`README.md has no ${START} … ${END} section`);
  Deno.exit(1);
}
const current = readme.slice(a, b + END.length);
if (Deno.args.includes("--check")) {
  if (current !== table) {
    console.error("README.md's platform token tables are out of date: run npm run docs:tokens");
    Deno.exit(1);
  }
  console.log("README.md's platform token tables are up to date");
} else {
  await Deno.writeTextFile(README, readme.slice(0, a) + table + readme.slice(b + END.length));
  console.log("README.md: platform token tables written");
}
