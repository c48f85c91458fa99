// OpenAI's embeddings: POST /v1/embeddings, as the openai SDK sends it (`client.embeddings.create`, which asks for
// base64 vectors unless told otherwise). Billed as input tokens at the embedding model's price (its output price
// is 0: an embedding generates no tokens); the usage is the answer's `usage.prompt_tokens`. Never streamed.
import { z } from "../../http/validation.ts";
import type { ProviderAdapter } from "./adapter.ts";
import { usageOf } from "./adapter.ts";
import { allowList } from "./fields.ts";
import { describeEmbedding, noStream } from "./no-output.ts";
import { int } from "./openai-compatible.ts";

/** Up to 2048 inputs, as OpenAI allows: texts, or token arrays. */
const input = z.union([
  z.string(),
  z.array(z.string()).min(1).max(2048),
  z.array(int(0, 10_000_000)).min(1).max(300_000),
  z.array(z.array(int(0, 10_000_000)).min(1).max(300_000)).min(1).max(2048),
]);

export const openAiEmbeddingsFields = {
  model: z.string().min(1).max(128),
  input,
  encoding_format: z.enum(["float", "base64"]).optional(),
  dimensions: int(1, 65_536).optional(),
  user: z.string().max(256).optional(),
};

export type EmbeddingsBody = { model: string; input: unknown; [key: string]: unknown };

export const openAiEmbeddingsSchema = allowList(
  openAiEmbeddingsFields,
  "OpenAI embeddings",
) as unknown as z.ZodType<
  EmbeddingsBody
>;

/** The embeddings endpoint of openai-proxy (its route picks it: ./openai.ts). */
export const openaiEmbeddings: ProviderAdapter<EmbeddingsBody> = {
  provider: "openai",
  label: "OpenAI",
  functionName: "openai-proxy",
  keyEnv: "OPENAI_API_KEY",
  baseUrlEnv: "OPENAI_BASE_URL",
  defaultBaseUrl: "https://api.openai.com/v1",
  requestIdHeader: "x-request-id",
  schema: openAiEmbeddingsSchema,
  route: (path) => (path === "/v1/embeddings" ? { upstreamPath: "/embeddings" } : null),
  // No output: the hold is the input at the model's price, and the tokens-per-minute limit counts the input.
  describe: (body) => describeEmbedding(body.model),
  prepare: (body) => ({ body, clientWantsUsage: true }),
  upstreamHeaders: (key) => ({ authorization: `Bearer ${key}` }),
  usageFromJson: (json) => {
    const u = (json as { usage?: { prompt_tokens?: unknown } } | null)?.usage;
    return u && typeof u === "object" ? usageOf({ input: u.prompt_tokens, output: 0 }) : null;
  },
  // No generated text: without a usage report the call is billed its input estimate (and the body's bytes as
  // output, at the output price of 0).
  outputTextOf: () => "",
  createStreamMeter: noStream,
};
