// Structured JSON logs, one line per event, with secrets redacted from every string value. LOG_LEVEL (debug,
// info — the default —, warn, error) sets the lowest level written.
import { env } from "./env.ts";

export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

const REDACTIONS: [RegExp, string][] = [
  [/(\b(?:Bearer|Basic)\s+)[A-Za-z0-9._~+/=-]+/gi, "$1[redacted]"], // authorization header values
  [/(\b[a-z][a-z0-9+.-]*:\/\/[^:\s/@]+:)[^@\s/]+@/gi, "$1[redacted]@"], // passwords in URLs
  [/\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/g, "[redacted]"], // JWTs
  [/\b(?:sk|rk|whsec|sk-ant|sk-proj|pplx|sb_secret)[-_][A-Za-z0-9_-]{8,}/g, "[redacted]"], // API keys
  [/\bAIza[0-9A-Za-z_-]{20,}/g, "[redacted]"], // Google API keys
];

/** Replaces anything that looks like a credential (tokens, API keys, URL passwords) with [redacted]. */
export function redact(text: string): string {
  return REDACTIONS.reduce((out, [pattern, replacement]) => out.replace(pattern, replacement), text);
}

function redactValue(value: unknown, depth = 0): unknown {
  if (typeof value === "string") return redact(value);
  if (value instanceof Error) return { name: value.name, message: redact(value.message) };
  if (depth > 4 || value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map((v) => redactValue(v, depth + 1));
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactValue(v, depth + 1)]));
}

/** An error and its cause, in one line for a log field. */
export function describeError(e: unknown): string {
  return e instanceof Error
    ? `${e.message}${e.cause instanceof Error ? `: ${e.cause.message}` : ""}`
    : String(e);
}

const LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error"];

/** The lowest level written: LOG_LEVEL, else info. An unknown value is info too (and says so once). */
function minimumLevel(): number {
  const setting = env.string("LOG_LEVEL")?.toLowerCase();
  const index = LEVELS.indexOf(setting as LogLevel);
  if (setting !== undefined && index < 0) {
    console.error(
      JSON.stringify({ level: "warn", msg: `LOG_LEVEL=${setting} is not one of ${LEVELS.join(", ")}` }),
    );
  }
  return index < 0 ? 1 : index;
}
let minimum: number | undefined;

export function createLogger(base: LogFields = {}): Logger {
  const write = (level: LogLevel, msg: string, fields: LogFields = {}) => {
    minimum ??= minimumLevel();
    if (LEVELS.indexOf(level) < minimum) return;
    const line = JSON.stringify({
      time: new Date().toISOString(),
      level,
      msg: redact(msg),
      ...(redactValue(base) as LogFields),
      ...(redactValue(fields) as LogFields),
    });
    if (level === "error" || level === "warn") console.error(line);
    else console.log(line);
  };
  return {
    debug: (msg, fields) => write("debug", msg, fields),
    info: (msg, fields) => write("info", msg, fields),
    warn: (msg, fields) => write("warn", msg, fields),
    error: (msg, fields) => write("error", msg, fields),
    child: (fields) => createLogger({ ...base, ...fields }),
  };
}
