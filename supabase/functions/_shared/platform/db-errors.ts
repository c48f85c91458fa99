// postgres.js error codes that say the database cannot be reached (refused, reset, timed out, shut down): a
// dependency down, not a bug. One list, read by the error mapping (503) and the usage settlement chain.

export const DB_UNREACHABLE_CODES: ReadonlySet<string> = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "CONNECT_TIMEOUT",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "57P01", // admin shutdown
  "57P03", // cannot connect now
]);

/** The error's `code` (a SQLSTATE or a postgres.js connection code), if it has a string one. */
export function errorCode(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/** Whether `e` says the database could not be reached. */
export function isDbUnreachable(e: unknown): boolean {
  const code = errorCode(e);
  return code !== undefined && DB_UNREACHABLE_CODES.has(code);
}
