// usage_summary: the run's user's own usage over a period (this month unless asked): requests, tokens and cost,
// in total and by provider and model. Read as the user (as-user.ts) through public.get_usage_summary, so its
// auth.uid() and usage_daily's RLS decide what is visible. Days are UTC, as usage_daily's are.
import { z } from "../../_shared/http/validation.ts";
import { asUser } from "./as-user.ts";
import type { AgentTool } from "./tool.ts";

const PERIODS = ["today", "last_7_days", "this_month", "last_month"] as const;
export type Period = typeof PERIODS[number];

const input = z.object({
  period: z.enum(PERIODS).optional().describe("The period to sum (UTC days); this_month when left out"),
}).strict();

const day = (d: Date) => d.toISOString().slice(0, 10);

/** The period's first and last UTC day (inclusive), as of `now`. */
export function periodDays(period: Period, now: Date): { from: string; to: string } {
  const y = now.getUTCFullYear();
  const m = now.getUTCMonth();
  const d = now.getUTCDate();
  switch (period) {
    case "today":
      return { from: day(now), to: day(now) };
    case "last_7_days":
      return { from: day(new Date(Date.UTC(y, m, d - 6))), to: day(now) };
    case "this_month":
      return { from: day(new Date(Date.UTC(y, m, 1))), to: day(now) };
    case "last_month":
      return { from: day(new Date(Date.UTC(y, m - 1, 1))), to: day(new Date(Date.UTC(y, m, 0))) };
  }
}

type Row = {
  provider: string;
  model: string;
  requests: number;
  input_tokens: number;
  cached_input_tokens: number;
  output_tokens: number;
  cost_micro_usd: number;
};

const usd = (microUsd: number) => microUsd / 1_000_000;

export function createUsageSummary(now: () => Date = () => new Date()): AgentTool<z.infer<typeof input>> {
  const tool: AgentTool<z.infer<typeof input>> = {
    name: "usage_summary",
    description: "The user's own usage of AI models over a period (this month unless asked): requests, " +
      "input, cached input and output tokens, and cost in USD, in total and by provider and model.",
    input,
    timeoutMs: 5_000,
    maxOutputBytes: 8_192,
    async run({ period = "this_month" }, ctx) {
      const { from, to } = periodDays(period, now());
      const rows = await asUser(ctx.userId, { statementTimeoutMs: tool.timeoutMs }, (tx) =>
        tx<Row[]>`
          select provider, model, sum(requests)::float8 as requests, sum(input_tokens)::float8 as input_tokens,
                 sum(cached_input_tokens)::float8 as cached_input_tokens,
                 sum(output_tokens)::float8 as output_tokens, sum(cost_micro_usd)::float8 as cost_micro_usd
            from public.get_usage_summary(p_from => ${from}::date, p_to => ${to}::date)
           group by provider, model
           order by sum(cost_micro_usd) desc, provider, model`);
      const total = (key: keyof Omit<Row, "provider" | "model">) => rows.reduce((s, r) => s + r[key], 0);
      return {
        period,
        from,
        to,
        total: {
          requests: total("requests"),
          input_tokens: total("input_tokens"),
          cached_input_tokens: total("cached_input_tokens"),
          output_tokens: total("output_tokens"),
          cost_usd: usd(total("cost_micro_usd")),
        },
        by_model: rows.map(({ cost_micro_usd, ...r }) => ({ ...r, cost_usd: usd(cost_micro_usd) })),
      };
    },
  };
  return tool;
}

export const usageSummary = createUsageSummary();
