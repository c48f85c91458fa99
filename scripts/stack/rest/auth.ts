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

export async function authenticate(
  authorization: string | null,
  jwt: ProjectJwt,
  anonRole: string,
): Promise<AuthResult> {
  const token = bearerToken(authorization);
  if (token === undefined) return { role: anonRole, claims: { role: anonRole } };
  if (token === "") throw jwtDecodeError("Empty JWT is sent in Authorization header");
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
  return { role, claims: { ...claims, role } };
}
