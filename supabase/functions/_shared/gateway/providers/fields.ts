// How each provider's allow-list is written: a strict object of the request fields the gateway forwards and
// can bill, so an unknown field is a clear 400 instead of being passed on (and maybe billed beyond tokens).
import { z } from "../../http/validation.ts";

/** A strict object: fields not listed are refused, naming them and the provider. */
export function allowList<Shape extends z.ZodRawShape>(shape: Shape, what: string) {
  return z.strictObject(shape, {
    error: (issue) =>
      issue.code === "unrecognized_keys"
        ? `${(issue as { keys: string[] }).keys.join(", ")}: not accepted by the gateway for ${what}`
        : undefined,
  });
}

/** A field refused because the provider bills it beyond tokens (or it fetches what we cannot bound). */
export const refused = (why: string) => z.never({ error: why }).optional();

export const BILLED_BEYOND_TOKENS = "is billed beyond tokens and not available through the gateway";
