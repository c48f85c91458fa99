// Anthropic's token count: POST /v1/messages/count_tokens, as @anthropic-ai/sdk's `messages.countTokens` sends it.
// Free (Anthropic bills no count): admitted with no input and no output, so it counts only against the
// requests-per-minute limit and leaves a usage row with no tokens (no-output.ts). The model must still be one the
// plan allows and that has a price. Its allow-list is the SDK's MessageCountTokensParams minus the header params
// (user_profile_id, workspace_id) in the body; tools of any kind pass, since a count runs none.
import { z } from "../../http/validation.ts";
import { NO_USAGE, type ProviderAdapter } from "./adapter.ts";
import { ANTHROPIC_API, conversationFields } from "./anthropic-api.ts";
import { allowList } from "./fields.ts";
import { describeCount, noStream } from "./no-output.ts";

export const countTokensFields = {
  ...conversationFields,
  tools: z.array(z.object({}).passthrough()).max(128).optional(),
  tool_choice: z.object({ type: z.string().max(32) }).passthrough().optional(),
  thinking: z.object({ type: z.enum(["enabled", "disabled", "adaptive"]) }).passthrough().optional(),
  cache_control: z.object({ type: z.literal("ephemeral") }).passthrough().nullish(),
  output_config: z.object({}).passthrough().optional(),
  speed: z.enum(["standard", "fast"]).nullish(),
};

const countTokensSchema = allowList(countTokensFields, "Anthropic count_tokens");

export type CountTokensBody = z.infer<typeof countTokensSchema>;

export const anthropicCountTokens: ProviderAdapter<CountTokensBody> = {
  ...ANTHROPIC_API,
  schema: countTokensSchema,
  route: (
    path,
  ) => (path === "/v1/messages/count_tokens" ? { upstreamPath: "/v1/messages/count_tokens" } : null),
  describe: (body) => describeCount(body.model),
  prepare: (body) => ({ body, clientWantsUsage: true }),
  // What a token count is billed, whatever the provider answered: nothing (a usage row with no tokens).
  usageFromJson: () => NO_USAGE,
  outputTextOf: () => "",
  createStreamMeter: noStream,
};
