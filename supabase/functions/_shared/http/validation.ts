// Reading request bodies safely, in the order a handler needs them:
//   requireJson  415 unless Content-Type is application/json (parameters such as charset allowed)
//   readRawBody  413 when Content-Length says more than maxBytes (before reading a byte), and when a body
//                without (or lying about) Content-Length streams past maxBytes (reading stops there)
//   readJson     415 → 413 → 400 "Body is not valid JSON" → 400 naming each failing field (zod) → the
//                typed value
// Functions import zod from here (`import { readJson, z } from "../_shared/http/validation.ts"`), so the whole
// project uses one pinned version.
import { z } from "npm:zod@4.6.7";
import { HttpError } from "./errors.ts";

export { z };

export const DEFAULT_MAX_JSON_BYTES = 64 * 1024;

/** 415 unless the request says its body is JSON. */
export function requireJson(req: Request): void {
  const type = req.headers.get("content-type")?.split(";")[0].trim().toLowerCase();
  if (type !== "application/json") {
    throw new HttpError("unsupported_media_type", "Content-Type must be application/json");
  }
}

function tooLarge(maxBytes: number): HttpError {
  return new HttpError("payload_too_large", `Request body is larger than ${maxBytes} bytes`);
}

/**
 * The body's bytes (or UTF-8 text with `as: "text"`), at most `maxBytes` of them, else 413. Reads no more
 * than maxBytes + 1 bytes of a stream before giving up. Text that is not valid UTF-8 is a 400.
 */
export function readRawBody(req: Request, maxBytes: number): Promise<Uint8Array>;
export function readRawBody(req: Request, maxBytes: number, as: "text"): Promise<string>;
export async function readRawBody(
  req: Request,
  maxBytes: number,
  as: "bytes" | "text" = "bytes",
): Promise<Uint8Array | string> {
  const declared = req.headers.get("content-length");
  if (declared !== null && /^\d+$/.test(declared.trim()) && Number(declared) > maxBytes) {
    await req.body?.cancel().catch(() => {});
    throw tooLarge(maxBytes);
  }
  const bytes = await readLimited(req.body, maxBytes);
  if (as === "bytes") return bytes;
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new HttpError("invalid_request", "Body is not valid UTF-8");
  }
}

async function readLimited(body: ReadableStream<Uint8Array> | null, maxBytes: number): Promise<Uint8Array> {
  if (!body) return new Uint8Array(0);
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > maxBytes) {
        await reader.cancel().catch(() => {});
        throw tooLarge(maxBytes);
      }
      chunks.push(value);
    }
  } finally {
    reader.releaseLock();
  }
  const out = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}

function formatPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((out, key) => {
    if (typeof key === "number") return `${out}[${key}]`;
    return out ? `${out}.${String(key)}` : String(key);
  }, "");
}

const MAX_ISSUES_SHOWN = 5;

/** A zod error as one line a client can act on: `plan: Invalid option: expected one of "pro"|"max"; …`. */
export function describeIssues(error: z.ZodError): string {
  const parts = error.issues.slice(0, MAX_ISSUES_SHOWN).map((issue) => {
    const path = formatPath(issue.path);
    return path ? `${path}: ${issue.message}` : issue.message;
  });
  const more = error.issues.length - MAX_ISSUES_SHOWN;
  return more > 0 ? `${parts.join("; ")} (and ${more} more)` : parts.join("; ");
}

/** Parses `value` with `schema`, or throws 400 naming the failing fields. */
export function parseWith<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw new HttpError("invalid_request", describeIssues(result.error));
  return result.data;
}

/** The JSON body, validated: 415 → 413 → 400 (not JSON) → 400 (schema) → the typed value. */
export async function readJson<S extends z.ZodType>(
  req: Request,
  schema: S,
  { maxBytes = DEFAULT_MAX_JSON_BYTES }: { maxBytes?: number } = {},
): Promise<z.output<S>> {
  requireJson(req);
  const bytes = await readRawBody(req, maxBytes);
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    throw new HttpError("invalid_request", "Body is not valid JSON");
  }
  return parseWith(schema, value);
}
