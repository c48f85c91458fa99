// What every handler receives: the service (settings, database, token signer, rate limits, log) and the call
// (the request, its URL and path parameters, the client's IP and user agent).
import type { AuthConfig } from "./config.ts";
import type { Pool } from "./db.ts";
import type { RateLimiter } from "./rate-limit.ts";
import type { Client, Signer } from "./tokens.ts";

export type Log = (level: "info" | "warn" | "error", msg: string, extra?: Record<string, unknown>) => void;

export type AuthService = {
  config: AuthConfig;
  db: Pool;
  signer: Signer;
  limits: { signInSignUps: RateLimiter; tokenRefresh: RateLimiter };
  log: Log;
};

export type Call = {
  req: Request;
  url: URL;
  /** Path parameters of the route, e.g. `{ id }` for /admin/users/:id. */
  params: Record<string, string>;
  client: Client;
};

export type Handler = (service: AuthService, call: Call) => Promise<Response>;
