// The HTTP answer to a successful request, as PostgREST 13's Response.hs builds it: the media type negotiated
// from Accept, Content-Range (and 206/416 when a count shows the range is partial or out of bounds),
// Preference-Applied, Location for return=headers-only, and what SQL asked for through response.status and
// response.headers.
import { ApiError, invalidRange, mediaTypeError } from "./errors.ts";
import { type ApiRequest, type MediaType, mimeOf } from "./request.ts";
import type { BodyHandler } from "./statements.ts";

export type Negotiated = { handler: BodyHandler; contentType: string };

const CHARSET = "; charset=utf-8";

/** The first accepted media type this request can produce, or PGRST107 (406). */
export function negotiate(
  accept: MediaType[],
  opts: { singularAllowed: boolean; csvAllowed: boolean },
): Negotiated {
  for (const mt of accept) {
    switch (mt.kind) {
      case "json":
      case "any":
        return { handler: "json", contentType: `application/json${CHARSET}` };
      case "array-stripped":
        return { handler: "json-stripped", contentType: `${mimeOf(mt)}${CHARSET}` };
      case "object":
        if (!opts.singularAllowed) continue;
        return {
          handler: mt.stripNulls ? "single-stripped" : "single",
          contentType: `${mimeOf(mt)}${CHARSET}`,
        };
      case "csv":
        if (!opts.csvAllowed) continue;
        return { handler: "csv", contentType: `text/csv${CHARSET}` };
      default:
        continue;
    }
  }
  throw mediaTypeError(accept.map(mimeOf));
}

/** PostgREST's Content-Range value: `lower-upper/total`, `*` where there is no range or no total. */
export function contentRange(lower: number, upper: number, total: number | null): string {
  const range = total !== 0 && lower <= upper ? `${lower}-${upper}` : "*";
  return `${range}/${total === null ? "*" : total}`;
}

/** Status and Content-Range of a read: 206 when a count shows more rows, 416 past the end. */
export function rangeStatus(
  offset: number,
  pageTotal: number,
  total: number | null,
): { status: number; range: string } {
  const upper = offset + pageTotal - 1;
  const range = contentRange(offset, upper, total);
  if (total === null) return { status: 200, range };
  if (offset > total) return { status: 416, range };
  if (1 + upper - offset < total) return { status: 206, range };
  return { status: 200, range };
}

export function outOfRange(offset: number, total: number | null): ApiError {
  return invalidRange({ offset, total: total ?? 0 });
}

/** Headers set from SQL with response.headers (a JSON array of one-key objects) override PostgREST's own. */
function gucHeaders(raw: unknown): [string, string][] {
  if (raw === null || raw === undefined) return [];
  let value: unknown;
  try {
    value = JSON.parse(String(raw));
  } catch {
    throw gucHeadersError();
  }
  if (!Array.isArray(value)) throw gucHeadersError();
  return value.map((o) => {
    if (o === null || typeof o !== "object" || Array.isArray(o)) throw gucHeadersError();
    const entries = Object.entries(o);
    if (entries.length !== 1 || typeof entries[0][1] !== "string") throw gucHeadersError();
    return [entries[0][0], entries[0][1] as string];
  });
}

const gucHeadersError = () =>
  new ApiError(
    500,
    "PGRST111",
    "response.headers guc must be a JSON array composed of objects with a single key and a string value",
  );

function gucStatus(raw: unknown): number | null {
  if (raw === null || raw === undefined) return null;
  const m = String(raw).match(/^[0-9]+/);
  if (!m) throw new ApiError(500, "PGRST112", "response.status guc must be a valid status code");
  return Number(m[0]);
}

export type Answer = { status: number; headers: Headers; body: string | null };

/** Applies response.status / response.headers from the main statement's row. */
export function withGucOverrides(answer: Answer, row: Record<string, unknown>): Answer {
  const status = gucStatus(row.response_status);
  const extra = gucHeaders(row.response_headers);
  const headers = new Headers(answer.headers);
  for (const [k, v] of extra) headers.set(k, v);
  return { ...answer, status: status ?? answer.status, headers };
}

export function contentProfile(api: ApiRequest, headers: Headers): void {
  if (api.negotiatedByProfile) headers.set("content-profile", api.schema);
}

export function toResponse(a: Answer, head: boolean): Response {
  const status = a.status >= 200 && a.status <= 599 ? a.status : 500;
  const nullBody = head || status === 204 || status === 304;
  return new Response(nullBody ? null : a.body ?? "", { status, headers: a.headers });
}
