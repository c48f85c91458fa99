// Request and response plumbing shared by the handlers: JSON answers, the JSON body read as Auth reads it (a
// body that is not JSON, or a field of the wrong type, is 400 bad_json; over 1 MiB is 413), the client's IP
// (first X-Forwarded-For entry, which the gateway sets, else the socket's address) and the bearer token.
import { AuthError, badRequest, unauthorized } from "./errors.ts";

const BODY_MAX_BYTES = 1024 * 1024;

export function json(body: unknown, status = 200, headers: HeadersInit = {}): Response {
  const out = new Headers(headers);
  out.set("content-type", "application/json");
  return new Response(JSON.stringify(body), { status, headers: out });
}

export const noContent = () => new Response(null, { status: 204 });

/** A parsed JSON object body; an empty object for `null`. Typed reads go through `field`. */
export type Body = Record<string, unknown>;

/** The JSON body; with `optional`, an empty body is an empty object (Auth reads DELETE bodies so). */
export async function readBody(req: Request, { optional = false } = {}): Promise<Body> {
  const bytes = new Uint8Array(await req.arrayBuffer());
  if (bytes.length > BODY_MAX_BYTES) {
    throw new AuthError(
      413,
      "request_entity_too_large",
      `Request body too large (max ${BODY_MAX_BYTES} bytes)`,
    );
  }
  const text = new TextDecoder().decode(bytes);
  if (optional && text.trim() === "") return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw badRequest("bad_json", `Could not parse request body as JSON: ${(e as Error).message}`);
  }
  if (parsed === null) return {};
  if (typeof parsed !== "object" || Array.isArray(parsed)) {
    throw badRequest("bad_json", "Could not parse request body as JSON: expected an object");
  }
  return parsed as Body;
}

type FieldKind = { string: string; boolean: boolean; object: Record<string, unknown> };

/** A body field of the given JSON type, or undefined when absent or null; another type is 400 bad_json. */
export function field<K extends keyof FieldKind>(
  body: Body,
  name: string,
  kind: K,
): FieldKind[K] | undefined {
  const value = body[name];
  if (value === undefined || value === null) return undefined;
  const type = Array.isArray(value) ? "array" : typeof value;
  const ok = type === kind;
  if (!ok) {
    throw badRequest("bad_json", `Could not parse request body as JSON: field "${name}" must be a ${kind}`);
  }
  return value as FieldKind[K];
}

/** The IP the rate limits and sessions record: the first X-Forwarded-For entry if it is an IP, else the peer's. */
export function clientIp(req: Request, peer: string): string {
  const forwarded = req.headers.get("x-forwarded-for")?.split(",")[0]?.trim();
  return forwarded && isIp(forwarded) ? forwarded : peer;
}

function isIp(value: string): boolean {
  if (/^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/.test(value)) return true;
  if (!/^[0-9a-fA-F:.]+$/.test(value) || !value.includes(":")) return false;
  return URL.canParse(`http://[${value}]/`);
}

/** The audience a request is for: its X-JWT-AUD header, else `fallback` (Auth's default audience). */
export function requestAudience(req: Request, fallback: string): string {
  return req.headers.get("x-jwt-aud") || fallback;
}

/** The bearer token of the Authorization header, or 401 no_authorization. */
export function bearerToken(req: Request): string {
  const token = req.headers.get("authorization")?.match(/^Bearer\s+(\S+)\s*$/i)?.[1];
  if (!token) throw unauthorized("no_authorization", "This endpoint requires a valid Bearer token");
  return token;
}
