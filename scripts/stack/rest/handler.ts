// One request, in PostgREST's order: who is calling (JWT), is the schema cache there, what is asked (path,
// method, profile, Prefer, query string, body), then the read, write or call. Any error is answered in
// PostgREST's shape; a database error with its SQLSTATE's status (401/403 for 42501 by role).
import { authenticate, type AuthResult } from "./auth.ts";
import { call } from "./call.ts";
import type { RestConfig } from "./config.ts";
import { type Database, isConnectionError } from "./db.ts";
import { ApiError, connectionError, errorResponse, fromPgError, noSchemaCache } from "./errors.ts";
import type { ProjectJwt } from "../keys-file.ts";
import { log } from "./log.ts";
import { read } from "./read.ts";
import { readApiRequest, withKnownTimezone } from "./request.ts";
import type { SchemaCache } from "./schema-cache.ts";
import { write } from "./write.ts";

export type HandlerDeps = {
  config: RestConfig;
  jwt: ProjectJwt;
  db: Database;
  cache: () => SchemaCache | null;
  /** Seconds a client should wait before retrying a 503 (PostgREST's Retry-After). */
  retryAfter: () => number;
  /** Called when the database looks unreachable, so the connection worker can take over. */
  onConnectionLost: () => void;
};

function asApiError(e: unknown, auth: AuthResult | null, deps: HandlerDeps): ApiError {
  if (e instanceof ApiError) return e;
  if (isConnectionError(e)) {
    deps.onConnectionLost();
    return connectionError(String((e as Error).message ?? e));
  }
  const pg = e as { code?: string; message?: string; detail?: string; hint?: string; severity?: string };
  if (pg && typeof pg.code === "string" && pg.severity) {
    const err = fromPgError(pg, auth !== null && auth.role !== deps.config.anonRole);
    if (err.status === 503) deps.onConnectionLost();
    return err;
  }
  log("error", "unexpected error", { error: String((e as Error)?.stack ?? e) });
  return new ApiError(500, "PGRSTX00", "Internal server error");
}

export function createHandler(deps: HandlerDeps): (req: Request) => Promise<Response> {
  return async (req) => {
    let auth: AuthResult | null = null;
    try {
      auth = await authenticate(req.headers.get("authorization"), deps.jwt, deps.config.anonRole);
      const cache = deps.cache();
      if (!cache) throw noSchemaCache();
      const asked = await readApiRequest(req, deps.config.schemas);
      const api = { ...asked, prefs: withKnownTimezone(asked.prefs, cache.timezones) };
      const ctx = { api, auth, cache, config: deps.config, db: deps.db };
      switch (api.action.kind) {
        case "read":
          return await read(ctx, api.action.relation, api.action.headersOnly);
        case "mutate":
          return await write(ctx, api.action.relation, api.action.mutation);
        case "call":
          return await call(ctx, api.action.routine, api.action.method);
      }
    } catch (e) {
      const err = asApiError(e, auth, deps);
      if (err.status >= 500) {
        // What PostgREST logs of a failed request: never the query string, body or token.
        log("warn", "request failed", {
          method: req.method,
          path: new URL(req.url).pathname,
          status: err.status,
          code: err.code,
          message: err.message,
        });
      }
      const res = errorResponse(err, { head: req.method === "HEAD" });
      if (err.status === 503) res.headers.set("retry-after", String(deps.retryAfter()));
      return res;
    }
  };
}
