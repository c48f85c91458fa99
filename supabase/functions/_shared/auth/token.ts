// Where a request carries its token: read from the first present header of a list the caller chooses (default
// `Authorization: Bearer <t>`; the LLM proxies also accept `x-api-key` / `x-goog-api-key`), and the 401 every
// caller-side authentication failure is (`www-authenticate: Bearer`, a message that shows no internals).
import { HttpError } from "../http/errors.ts";

export const DEFAULT_TOKEN_HEADERS: readonly string[] = ["authorization"];
/** For the LLM proxies: OpenAI-style bearer, Anthropic-style x-api-key, Google-style x-goog-api-key. */
export const API_KEY_TOKEN_HEADERS: readonly string[] = ["x-api-key", "x-goog-api-key", "authorization"];

const BEARER = /^Bearer[ \t]+([^\s]+)[ \t]*$/i;

export function unauthorized(message: string): HttpError {
  return new HttpError("unauthorized", message, { "www-authenticate": "Bearer" });
}

/**
 * The token from the first of `headers` that the request carries. `authorization` must use the Bearer
 * scheme; any other header holds the bare token. No such header → 401.
 */
export function bearerOrApiKey(req: Request, headers: readonly string[] = DEFAULT_TOKEN_HEADERS): string {
  for (const name of headers) {
    const value = req.headers.get(name)?.trim();
    if (!value) continue;
    if (name.toLowerCase() === "authorization") {
      const match = BEARER.exec(value);
      if (!match) throw unauthorized("The Authorization header must be 'Bearer <token>'");
      return match[1];
    }
    return value;
  }
  throw unauthorized(`Missing token: send it in the ${headers.join(" or ")} header`);
}
