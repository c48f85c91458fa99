// Gemini's embeddings: POST /{v1beta,v1}/models/{model}:embedContent (one content) and :batchEmbedContents (a
// list of them; what @google/genai's `models.embedContent` sends to the Gemini API). Billed as input tokens at the
// embedding model's price (its output price is 0): the answer's usageMetadata.promptTokenCount, or, when the
// answer reports none, the input estimate (flagged estimated). Never streamed.
//
// Allowed: text and inline data parts (measured with the body); refused: a file by URI (input the gateway cannot
// measure, and an embedding answer may report no usage to bill it by). In a batch every request names the path's
// model (the model billed), as the API requires.
import { HttpError } from "../../http/errors.ts";
import { z } from "../../http/validation.ts";
import { type ProviderAdapter, type Route, usageOf } from "./adapter.ts";
import { allowList } from "./fields.ts";
import { both, GEMINI_API, MODEL_METHOD, oneSpelling } from "./google-api.ts";
import { int } from "./openai-compatible.ts";
import { describeEmbedding, noStream } from "./no-output.ts";

type Part = Record<string, unknown>;

const part = z.object({}).passthrough().refine(
  (p: Part) => p.fileData === undefined && p.file_data === undefined,
  { error: "fileData: a file by URI cannot be measured, so it cannot be embedded through the gateway" },
);

/** The content to embed: its parts (text, inline data) and an optional role. */
const content = allowList({
  parts: z.array(part).min(1).max(2048),
  role: z.string().max(32).optional(),
}, "a Gemini embedding content");

/** One embedding request's fields (both spellings); `model` is "models/{model}". */
export const embedContentFields = {
  model: z.string().max(160).optional(),
  content,
  ...both("taskType", "task_type", z.string().max(64).optional()),
  title: z.string().max(4096).optional(),
  ...both("outputDimensionality", "output_dimensionality", int(1, 65_536).optional()),
};

const embedContentSchema = allowList(embedContentFields, "Gemini embedContent").superRefine(oneSpelling);

const batchSchema = allowList({
  requests: z.array(allowList(embedContentFields, "a Gemini embedContent request").superRefine(oneSpelling))
    .min(1).max(250),
}, "Gemini batchEmbedContents");

export type EmbedContentBody = Record<string, unknown>;
export type BatchEmbedContentsBody = { requests: EmbedContentBody[] };

/** The route of one embedding method (the path's model is the one billed). */
const routeFor = (method: string) => (path: string): Route | null => {
  const m = MODEL_METHOD.exec(path);
  return m && m[3] === method ? { upstreamPath: `/${m[1]}/models/${m[2]}:${method}`, model: m[2] } : null;
};

/** usageMetadata.promptTokenCount when the answer reports it; null (billed by the estimate) when not. */
function usageFromJson(json: unknown) {
  const u = (json as { usageMetadata?: { promptTokenCount?: unknown } } | null)?.usageMetadata;
  return u && typeof u === "object" ? usageOf({ input: u.promptTokenCount, output: 0 }) : null;
}

const embeddingEndpoint = {
  ...GEMINI_API,
  describe: (_body: unknown, route: Route) => describeEmbedding(route.model!),
  prepare: <B>(body: B) => ({ body, clientWantsUsage: true }),
  usageFromJson,
  // No generated text: without a usage report the call is billed its input estimate.
  outputTextOf: () => "",
  createStreamMeter: noStream,
};

export const geminiEmbedContent: ProviderAdapter<EmbedContentBody> = {
  ...embeddingEndpoint,
  schema: embedContentSchema as unknown as z.ZodType<EmbedContentBody>,
  route: routeFor("embedContent"),
};

export const geminiBatchEmbedContents: ProviderAdapter<BatchEmbedContentsBody> = {
  ...embeddingEndpoint,
  schema: batchSchema as unknown as z.ZodType<BatchEmbedContentsBody>,
  route: routeFor("batchEmbedContents"),
  describe: (body, route) => {
    const model = route.model!;
    const other = body.requests.findIndex((r) => r.model !== undefined && r.model !== `models/${model}`);
    if (other >= 0) {
      throw new HttpError(
        "invalid_request",
        `requests[${other}].model: must be models/${model}, the model the path names`,
      );
    }
    return describeEmbedding(model);
  },
};
