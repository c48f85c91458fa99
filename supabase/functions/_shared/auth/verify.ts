// Whether a token is a Supabase *user* token: HS256 with env JWT_SECRET (legacy/local projects), or ES256/RS256
// against the project's JWKS (jwks.ts). Each key kind has its own explicit `algorithms` allow-list; `alg: none`
// never verifies. `exp` is required; expired / not-yet-valid / wrong signature → 401. Only `role:
// "authenticated"` with a UUID `sub` is a user: the anon and service_role keys are refused here. A key source
// that is down is a 503, not a 401.
import { decodeProtectedHeader, errors, type JWTPayload, jwtVerify } from "npm:jose@6.2.18";
import { HttpError } from "../http/errors.ts";
import { env } from "../platform/env.ts";
import { describeError, type Logger } from "../platform/log.ts";
import { jwksConfigured, KeySourceUnavailable, projectJwks } from "./jwks.ts";
import { unauthorized } from "./token.ts";

/** The verified claims of a signed-in user, as Supabase Auth issues them. */
export type UserClaims = JWTPayload & { sub: string; role: "authenticated"; email?: string };

const SYMMETRIC_ALGORITHMS = ["HS256"];
const ASYMMETRIC_ALGORITHMS = ["ES256", "RS256"];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Verifies signature, algorithm and time claims; returns the claims of a user token, else throws 401. */
export async function verifyUserToken(token: string, log?: Logger): Promise<UserClaims> {
  let payload: JWTPayload;
  try {
    const { alg } = decodeProtectedHeader(token);
    const secret = env.string("JWT_SECRET");
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
      log?.error("auth key source unavailable", { error: describeError(e) });
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
