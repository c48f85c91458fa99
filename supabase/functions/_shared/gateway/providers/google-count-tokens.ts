// Gemini's token count: POST /{v1beta,v1}/models/{model}:countTokens, as @google/genai's `models.countTokens`
// sends it ({contents}), or with a whole generateContentRequest. Free (the provider bills no count): admitted with
// no input and no output, so it counts only against the requests-per-minute limit and leaves a usage row with no
// tokens (no-output.ts). The model must still be one the plan allows and that has a price.
import { z } from "../../http/validation.ts";
import { NO_USAGE, type ProviderAdapter, type Route } from "./adapter.ts";
import { allowList } from "./fields.ts";
import { both, GEMINI_API, MODEL_METHOD, oneSpelling } from "./google-api.ts";
import { describeCount, noStream } from "./no-output.ts";

export type CountTokensBody = Record<string, unknown>;

const countTokensSchema = allowList({
  contents: z.array(z.object({}).passthrough()).min(1).max(2000).optional(),
  // Counted, never run: nothing in it is billed.
  ...both("generateContentRequest", "generate_content_request", z.object({}).passthrough().optional()),
}, "Gemini countTokens").superRefine(oneSpelling).refine(
  (b: CountTokensBody) =>
    [b.contents, b.generateContentRequest ?? b.generate_content_request].filter((x) => x !== undefined)
      .length === 1,
  { error: "send contents or generateContentRequest (one of them)" },
);

export const geminiCountTokens: ProviderAdapter<CountTokensBody> = {
  ...GEMINI_API,
  schema: countTokensSchema as unknown as z.ZodType<CountTokensBody>,
  route: (path): Route | null => {
    const m = MODEL_METHOD.exec(path);
    return m && m[3] === "countTokens"
      ? { upstreamPath: `/${m[1]}/models/${m[2]}:countTokens`, model: m[2] }
      : null;
  },
  describe: (_body, route) => describeCount(route.model!),
  prepare: (body) => ({ body, clientWantsUsage: true }),
  // What a token count is billed, whatever the provider answered: nothing (a usage row with no tokens).
  usageFromJson: () => NO_USAGE,
  outputTextOf: () => "",
  createStreamMeter: noStream,
};
