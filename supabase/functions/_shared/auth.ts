// Who is calling: verifies a Supabase *user* JWT and loads the user from public.users.
//
//   token    read from the first present header of a list the caller chooses (default
//            `Authorization: Bearer <t>`; LLM proxies also accept `x-api-key` / `x-goog-api-key`).
//   keys     HS256 with env JWT_SECRET (legacy/local projects), and ES256/RS256 against the project's
//            JWKS: env SUPABASE_JWKS (a JSON `{"keys":[…]}`), else SUPABASE_JWKS_URL, else
//            `${SUPABASE_URL}/auth/v1/.well-known/jwks.json` (fetched and cached per process by jose).
//            Each key kind has its own explicit `algorithms` allow-list; `alg: none` never verifies.
//   claims   `exp` required; expired / not-yet-valid / wrong signature → 401. Only `role: "authenticated"`
//            with a UUID `sub` is a user: the anon and service_role keys are refused here.
//   user     one query, `select id, email, plan from public.users where id = $1`; no row → 401.
//
// Every caller-side failure is `HttpError("unauthorized", …, { "www-authenticate": "Bearer" })` with a
// message that shows no internals. A key source or the database being down is a 503, not a 401.
// Compose: `withHttp(options, withAuth(async (req, { user }) => …))`.
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  decodeProtectedHeader,
  errors,
  type JWTPayload,
  jwtVerify,
  type JWTVerifyGetKey,
} from "npm:jose@6.2.18";
import { db, type Sql } from "./db.ts";
import { optionalEnv } from "./env.ts";
import { HttpError } from "./errors.ts";
import type { Handler, RequestContext } from "./http.ts";
import type { Logger } from "./log.ts";

export type Plan = "free" | "pro" | "max";

/** The verified claims of a signed-in user, as Supabase Auth issues them. */
export type UserClaims = JWTPayload & { sub: string; role: "authenticated"; email?: string };

export type AuthUser = {
  readonly id: string;
  readonly email: string | null;
  readonly plan: Plan;
  readonly claims: UserClaims;
};

export type AuthOptions = {
  /** Headers to read the token from, in priority order (first present wins). Default: authorization. */
  headers?: readonly string[];
  /** The database client for the user lookup. Default: the shared `db()`. */
  sql?: Sql;
  /** Where dependency failures (JWKS, database) are logged. */
  log?: Logger;
};

export type AuthedContext<C extends RequestContext = RequestContext> = C & { readonly user: AuthUser };

export const DEFAULT_TOKEN_HEADERS: readonly string[] = ["authorization"];
/** For the LLM proxies: OpenAI-style bearer, Anthropic-style x-api-key, Gemini-style x-goog-api-key. */
export const API_KEY_TOKEN_HEADERS: readonly string[] = ["x-api-key", "x-goog-api-key", "authorization"];

const SYMMETRIC_ALGORITHMS = ["HS256"];
const ASYMMETRIC_ALGORITHMS = ["ES256", "RS256"];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const BEARER = /^Bearer[ \t]+([^\s]+)[ \t]*$/i;

export function unauthorized(message: string): HttpError {
  return new HttpError("unauthorized", message, { "www-authenticate": "Bearer" });
}

/**
 * The token from the first of `headers` that the request carries. `authorization` must use the Bearer
 * scheme; any other header holds the bare token. No such header → 401.
 */
export function bearerOrApiKey(req: Request, headers: readonly string[] = DEFAULT_TOKEN_HEADERS): string {
  for (const name of headers) {
    const value = req.headers.get(name)?.trim();
    if (!value) continue;
    if (name.toLowerCase() === "authorization") {
      const match = BEARER.exec(value);
      if (!match) throw unauthorized("The Authorization header must be 'Bearer <token>'");
      return match[1];
    }
    return value;
  }
  throw unauthorized(`Missing token: send it in the ${headers.join(" or ")} header`);
}

/** A key source (the JWKS) could not be read: the server's problem, answered with 503. */
class KeySourceUnavailable extends Error {
  override name = "KeySourceUnavailable";
}

/** Errors from resolving a key, other than "no such key", mean the key source is down or broken. */
function guarded(getKey: JWTVerifyGetKey): JWTVerifyGetKey {
  return async (header, token) => {
    try {
      return await getKey(header, token);
    } catch (e) {
      if (e instanceof errors.JWKSNoMatchingKey || e instanceof errors.JWKSMultipleMatchingKeys) throw e;
      throw new KeySourceUnavailable("The project's JWKS could not be used", { cause: e });
    }
  };
}

let localJwks: { source: string; getKey: JWTVerifyGetKey } | undefined;
const remoteJwks = new Map<string, JWTVerifyGetKey>();

function jwksConfigured(): boolean {
  return ["SUPABASE_JWKS", "SUPABASE_JWKS_URL", "SUPABASE_URL"].some((name) =>
    optionalEnv(name) !== undefined
  );
}

/** The project's asymmetric keys, from env; null when none is configured. Cached per process. */
function projectJwks(): JWTVerifyGetKey | null {
  const inline = optionalEnv("SUPABASE_JWKS");
  if (inline !== undefined) {
    if (localJwks?.source !== inline) {
      let getKey: JWTVerifyGetKey;
      try {
        getKey = createLocalJWKSet(JSON.parse(inline));
      } catch (e) {
        throw new KeySourceUnavailable("SUPABASE_JWKS is not a valid JWKS", { cause: e });
      }
      localJwks = { source: inline, getKey: guarded(getKey) };
    }
    return localJwks.getKey;
  }
  const base = optionalEnv("SUPABASE_URL")?.replace(/\/+$/, "");
  const url = optionalEnv("SUPABASE_JWKS_URL") ?? (base && `${base}/auth/v1/.well-known/jwks.json`);
  if (!url) return null;
  let getKey = remoteJwks.get(url);
  if (!getKey) {
    try {
      getKey = guarded(createRemoteJWKSet(new URL(url), { timeoutDuration: 3000 }));
    } catch (e) {
      throw new KeySourceUnavailable("The JWKS URL is not valid", { cause: e });
    }
    remoteJwks.set(url, getKey);
  }
  return getKey;
}

function describe(e: unknown): string {
  return e instanceof Error
    ? `${e.message}${e.cause instanceof Error ? `: ${e.cause.message}` : ""}`
    : String(e);
}

/** Verifies signature, algorithm and time claims; returns the claims of a user token, else throws 401. */
// Verified tokens, until they expire: a user's requests carry the same access token for up to an hour, and
// verifying it again is the costliest step of a small call. Keyed by the whole token; bounded.
const VERIFIED_CACHE_MAX = 10_000;
const verified = new Map<string, UserClaims>();

/** verifyUserToken, remembering each verified token until its `exp`. */
export async function verifyUserTokenCached(token: string, log?: Logger): Promise<UserClaims> {
  const hit = verified.get(token);
  if (hit && (hit.exp ?? 0) * 1000 > Date.now()) return hit;
  if (hit) verified.delete(token);
  const claims = await verifyUserToken(token, log);
  if (verified.size >= VERIFIED_CACHE_MAX) verified.delete(verified.keys().next().value!);
  verified.set(token, claims);
  return claims;
}

export async function verifyUserToken(token: string, log?: Logger): Promise<UserClaims> {
  let payload: JWTPayload;
  try {
    const { alg } = decodeProtectedHeader(token);
    const secret = optionalEnv("JWT_SECRET");
    if (!secret && !jwksConfigured()) {
      throw new HttpError("service_unavailable", "Authentication is not configured on the server");
    }
    const options = { requiredClaims: ["exp"] };
    const jwks = alg !== undefined && ASYMMETRIC_ALGORITHMS.includes(alg) ? projectJwks() : null;
    if (alg !== undefined && SYMMETRIC_ALGORITHMS.includes(alg) && secret) {
      const key = new TextEncoder().encode(secret);
      ({ payload } = await jwtVerify(token, key, { ...options, algorithms: SYMMETRIC_ALGORITHMS }));
    } else if (jwks) {
      ({ payload } = await jwtVerify(token, jwks, { ...options, algorithms: ASYMMETRIC_ALGORITHMS }));
    } else {
      throw unauthorized("Token algorithm not accepted");
    }
  } catch (e) {
    if (e instanceof HttpError) throw e;
    if (e instanceof KeySourceUnavailable) {
      log?.error("auth key source unavailable", { error: describe(e) });
      throw new HttpError("service_unavailable", "Authentication is temporarily unavailable");
    }
    if (e instanceof errors.JWTExpired) throw unauthorized("Token has expired");
    if (e instanceof errors.JWTClaimValidationFailed && e.claim === "nbf") {
      throw unauthorized("Token is not yet valid");
    }
    throw unauthorized("Invalid token");
  }
  if (payload.role !== "authenticated" || typeof payload.sub !== "string" || !UUID.test(payload.sub)) {
    throw unauthorized("Token is not a user token");
  }
  return payload as UserClaims;
}

/** The calling user: token from `options.headers`, verified, and present in public.users. */
export async function authenticate(req: Request, options: AuthOptions = {}): Promise<AuthUser> {
  const token = bearerOrApiKey(req, options.headers);
  const claims = await verifyUserToken(token, options.log);
  let rows: { id: string; email: string | null; plan: Plan }[];
  try {
    const sql = options.sql ?? db();
    rows = await sql<{ id: string; email: string | null; plan: Plan }[]>`
      select id, email, plan from public.users where id = ${claims.sub}`;
  } catch (e) {
    if (e instanceof HttpError) throw e;
    options.log?.error("auth user lookup failed", { error: describe(e) });
    throw new HttpError("service_unavailable", "Authentication is temporarily unavailable");
  }
  const row = rows[0];
  if (!row) throw unauthorized("User not found");
  return { id: row.id, email: row.email, plan: row.plan, claims };
}

/**
 * Authenticates before the handler runs and hands it `ctx.user` (and a logger tagged with user_id).
 * `withHttp(options, withAuth(handler))`; pass `{ headers: API_KEY_TOKEN_HEADERS }` for the proxies.
 */
export function withAuth<C extends RequestContext = RequestContext>(
  handler: Handler<AuthedContext<C>>,
  options: Omit<AuthOptions, "log"> = {},
): Handler<C> {
  return async (req, ctx) => {
    const user = await authenticate(req, { ...options, log: ctx.log });
    return await handler(req, { ...ctx, log: ctx.log.child({ user_id: user.id }), user });
  };
}
