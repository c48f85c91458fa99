// calculator: the value of an arithmetic expression (+ - * / % ^, parentheses, unary minus, decimals, sqrt, abs,
// round, min, max, ln, log10, sin, cos, tan, pi, e), read by expression.ts's parser: never evaluated as code.
import { z } from "../../_shared/http/validation.ts";
import { calculate } from "./expression.ts";
import type { AgentTool } from "./tool.ts";

const input = z.object({
  expression: z.string().min(1).max(500).describe(
    'The expression, e.g. "(12.5 + 3) * 2^3 / sqrt(16)" or "round(100 * 7 / 9, 2)"',
  ),
}).strict();

export const calculator: AgentTool<z.infer<typeof input>> = {
  name: "calculator",
  description: "Evaluates an arithmetic expression exactly as written: + - * / % (remainder) ^ (power), " +
    "parentheses, unary minus, decimals, the functions sqrt, abs, round(x[, digits]), min, max, ln, log10, " +
    "sin, cos, tan (radians) and the constants pi and e. Use it for any arithmetic rather than computing by hand.",
  input,
  timeoutMs: 1_000,
  maxOutputBytes: 2_048,
  run: ({ expression }) => Promise.resolve({ expression, result: calculate(expression) }),
};
