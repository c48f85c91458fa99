// Typed access to the function's environment. A missing required variable is a 503 for the client
// (the service is not configured) and a clear log line for the operator, never a crash with a stack.
import { HttpError } from "./errors.ts";

export function optionalEnv(name: string): string | undefined {
  const value = Deno.env.get(name);
  return value === undefined || value.trim() === "" ? undefined : value.trim();
}

export function requiredEnv(name: string, what = "This service"): string {
  const value = optionalEnv(name);
  if (value === undefined) {
    throw new HttpError("service_unavailable", `${what} is not configured on the server`);
  }
  return value;
}

/** Comma-separated list; empty entries dropped. */
export function listEnv(name: string): string[] {
  return (optionalEnv(name) ?? "").split(",").map((s) => s.trim()).filter(Boolean);
}
