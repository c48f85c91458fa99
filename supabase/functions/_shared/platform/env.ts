// The function's environment, through one typed reader: every setting the functions read goes through `env`.
//   env.string("X")                       trimmed; unset or blank → undefined
//   env.required("X", "Billing")          a missing one is a 503 for the client (the service is not configured)
//                                         and a clear log line for the operator, never a crash with a stack
//   env.list("X")                         comma-separated, empty entries dropped
//   env.integer("X", { min, max, default }) a whole number within the bounds, else an Error naming the setting
//   env.boolean("X")                      true/false (also on/off, yes/no, 1/0), else an Error naming it
import { HttpError } from "../http/errors.ts";

function string(name: string): string | undefined {
  const value = Deno.env.get(name);
  return value === undefined || value.trim() === "" ? undefined : value.trim();
}

function required(name: string, what = "This service"): string {
  const value = string(name);
  if (value === undefined) {
    throw new HttpError("service_unavailable", `${what} is not configured on the server`);
  }
  return value;
}

/** Comma-separated list; empty entries dropped. */
function list(name: string): string[] {
  return (string(name) ?? "").split(",").map((s) => s.trim()).filter(Boolean);
}

type IntegerBounds = { min: number; max?: number };

/** A whole number of at least `min` (and at most `max`); unset → `default`; anything else throws. */
function integer(name: string, options: IntegerBounds & { default: number }): number;
function integer(name: string, options: IntegerBounds): number | undefined;
function integer(name: string, options: IntegerBounds & { default?: number }): number | undefined {
  const raw = string(name);
  if (raw === undefined) return options.default;
  const n = Number(raw);
  const { min, max } = options;
  if (!Number.isSafeInteger(n) || n < min || (max !== undefined && n > max)) {
    throw new Error(`${name} must be a whole number >= ${min}${max === undefined ? "" : ` and <= ${max}`}`);
  }
  return n;
}

const TRUE_WORDS = ["true", "on", "yes", "1"];
const FALSE_WORDS = ["false", "off", "no", "0"];

/** A setting's words for yes and no (any case); undefined for anything else. */
export function parseBoolean(value: string): boolean | undefined {
  const word = value.trim().toLowerCase();
  return TRUE_WORDS.includes(word) ? true : FALSE_WORDS.includes(word) ? false : undefined;
}

/** true or false; unset → `default`; any other value throws. */
function boolean(name: string, options: { default: boolean }): boolean;
function boolean(name: string): boolean | undefined;
function boolean(name: string, options: { default?: boolean } = {}): boolean | undefined {
  const raw = string(name);
  if (raw === undefined) return options.default;
  const value = parseBoolean(raw);
  if (value === undefined) throw new Error(`${name} must be true or false`);
  return value;
}

export const env = { string, required, list, integer, boolean };
