// Who a request runs as, as PostgREST decides it: no bearer token → the anonymous role; a token is verified
// (by keys-file.ts, the stack's one verifier) and its `role` claim is the role (the anonymous role when it has
// none). The claims, with `role` filled in, become request.jwt.claims. Errors are PostgREST's PGRST301/303.
import type { ProjectJwt } from "../keys-file.ts";
import { ApiError, jwtClaimsError, jwtDecodeError } from "./errors.ts";

export type AuthResult = { role: string; claims: Record<string, unknown> };

/** The token of an `Authorization: Bearer <token>` header; undefined when there is no bearer credential. */
export function bearerToken(authorization: string | null): string | undefined {
  if (authorization === null) return undefined;
  const m = authorization.match(/^(\S*)\s*(.*)$/s);
  if (!m || m[1].toLowerCase() !== "bearer") return undefined;
  return m[2].trim();
}

/** jose's verification errors in PostgREST's words. */
function tokenError(e: unknown): ApiError {
  const code = (e as { code?: string }).code;
  const claim = (e as { claim?: string }).claim;
  const message = String((e as Error).message ?? "");
  switch (code) {
    case "ERR_JWT_EXPIRED":
      return jwtClaimsError("JWT expired");
    case "ERR_JWT_CLAIM_VALIDATION_FAILED":
      if (message.includes("must be a number")) {
        return jwtClaimsError(`The JWT '${claim ?? "exp"}' claim must be a number`);
      }
      if (claim === "nbf") return jwtClaimsError("JWT not yet valid");
      if (claim === "iat") return jwtClaimsError("JWT issued at future");
      return jwtClaimsError("Parsing claims failed");
    case "ERR_JWT_INVALID":
      return jwtClaimsError("Parsing claims failed");
    case "ERR_JOSE_ALG_NOT_ALLOWED":
    case "ERR_JOSE_NOT_SUPPORTED":
      return jwtDecodeError("Wrong or unsupported encoding algorithm");
    case "ERR_JWKS_NO_MATCHING_KEY":
    case "ERR_JWKS_MULTIPLE_MATCHING_KEYS":
    case "ERR_JWK_INVALID":
      return jwtDecodeError("No suitable key or wrong key type");
    default:
      return jwtDecodeError("JWT cryptographic operation failed");
  }
}

const ALLOWED_SKEW_SECONDS = 30;

/** The claim checks PostgREST makes beyond signature and expiry (iat not in the future, aud's type). */
function checkClaims(claims: Record<string, unknown>): void {
  const now = Math.floor(Date.now() / 1000);
  const { iat, aud } = claims;
  if (iat !== undefined) {
    if (typeof iat !== "number") throw jwtClaimsError("The JWT 'iat' claim must be a number");
    if (now < iat - ALLOWED_SKEW_SECONDS) throw jwtClaimsError("JWT issued at future");
  }
  const audOk = aud === undefined || aud === null || typeof aud === "string" ||
    (Array.isArray(aud) && aud.every((a) => typeof a === "string"));
  if (!audOk) throw jwtClaimsError("The JWT 'aud' claim must be a string or an array of strings");
}

/**
 * Verified tokens, until they expire (PostgREST's JWT cache, jwt-cache-max-lifetime): an ES256 verification
 * costs more than the rest of a simple request. An entry never outlives the token's exp, so what a request
 * sees is what a fresh verification would give. Bounded: the oldest entries go first.
 */
const CACHE_MAX_ENTRIES = 5_000;
const CACHE_MAX_LIFETIME_MS = 3_600_000;
const verified = new Map<string, { result: AuthResult; until: number }>();

function remember(token: string, result: AuthResult): void {
  const exp = typeof result.claims.exp === "number" ? result.claims.exp * 1000 : Infinity;
  const until = Math.min(exp, Date.now() + CACHE_MAX_LIFETIME_MS);
  if (verified.size >= CACHE_MAX_ENTRIES) verified.delete(verified.keys().next().value!);
  verified.set(token, { result, until });
}

export async function authenticate(
  authorization: string | null,
  jwt: ProjectJwt,
  anonRole: string,
): Promise<AuthResult> {
  const token = bearerToken(authorization);
  if (token === undefined) return { role: anonRole, claims: { role: anonRole } };
  if (token === "") throw jwtDecodeError("Empty JWT is sent in Authorization header");
  const cached = verified.get(token);
  if (cached && cached.until > Date.now()) return cached.result;
  if (cached) verified.delete(token);
  const parts = token.split(".").length;
  if (parts !== 3) throw jwtDecodeError(`Expected 3 parts in JWT; got ${parts}`);
  let claims: Record<string, unknown>;
  try {
    claims = { ...(await jwt.verify(token)) };
  } catch (e) {
    throw tokenError(e);
  }
  checkClaims(claims);
  const claimed = claims.role;
  const role = claimed === undefined
    ? anonRole
    : typeof claimed === "string"
    ? claimed
    : JSON.stringify(claimed);
  const result = { role, claims: { ...claims, role } };
  remember(token, result);
  return result;
}
