// Whether an error says the database is not answering: then a usage record goes to Redis, not back to the
// database. The connection errors of platform/db-errors.ts, a deadline that passed, and a crash shutdown (57P02:
// the server is restarting after a crash).
import { errorCode, isDbUnreachable } from "../../platform/db-errors.ts";
import { Timeout } from "../../platform/deadline.ts";

export function isUnreachable(e: unknown): boolean {
  return e instanceof Timeout || isDbUnreachable(e) || errorCode(e) === "57P02";
}
