// What every Gemini endpoint of google-proxy shares (generateContent and its stream: google.ts; embeddings:
// google-embeddings.ts; token counts: google-count-tokens.ts): who the provider is, its auth header, how a path
// names the model and method, and the REST API's two spellings of every field.
import type { z } from "../../http/validation.ts";
import type { ProviderAdapter } from "./adapter.ts";

/** The provider's identity and auth, the same for every endpoint. */
export const GEMINI_API = {
  provider: "google",
  label: "Gemini",
  functionName: "google-proxy",
  keyEnv: "GOOGLE_API_KEY",
  baseUrlEnv: "GOOGLE_BASE_URL",
  defaultBaseUrl: "https://generativelanguage.googleapis.com",
  upstreamHeaders: (key: string) => ({ "x-goog-api-key": key }),
} as const satisfies Partial<ProviderAdapter>;

/** POST /{v1beta,v1}/models/{model}:{method}: the API version, the model and the method. */
export const MODEL_METHOD = /^\/(v1beta|v1)\/models\/([A-Za-z0-9._-]{1,128}):([A-Za-z]{1,64})$/;

/** A field in both of its spellings (camelCase, snake_case), with one schema. */
export function both<S extends z.ZodType>(camel: string, snake: string, schema: S) {
  return { [camel]: schema, [snake]: schema } as Record<string, S>;
}

/** Refuses an object that names a field in both spellings: which one the provider reads is not ours to guess. */
export function oneSpelling(value: Record<string, unknown>, ctx: z.RefinementCtx) {
  for (const key of Object.keys(value)) {
    const camel = key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
    if (camel !== key && value[camel] !== undefined && value[key] !== undefined) {
      ctx.addIssue({
        code: "custom",
        path: [key],
        message: `${key} and ${camel} are the same field: send one`,
      });
    }
  }
}
