// Who is calling, as Supabase Auth decides it: the bearer token verified by keys-file.ts (ES256 user tokens,
// HS256 keys), then the user of its `sub` and the session of its `session_id` loaded — a signed-out session's
// token is refused (403 session_not_found), as is a deleted user's (403 user_not_found) or a banned one's. The
// admin API wants a token whose role is an admin role (service_role): anything else is 403 not_admin.
import type { JWTPayload } from "npm:jose@6.2.18";
import type { AuthService } from "./context.ts";
import { badRequest, forbidden } from "./errors.ts";
import { bearerToken } from "./http.ts";
import { sessionExists } from "./store/sessions.ts";
import { findUserById, type UserRecord } from "./store/users.ts";

export type Claims = JWTPayload & { role?: unknown; session_id?: unknown };

export type Authenticated = { claims: Claims; user: UserRecord; sessionId: string | null };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const NIL_UUID = "00000000-0000-0000-0000-000000000000";

async function verifiedClaims(service: AuthService, req: Request): Promise<Claims> {
  const token = bearerToken(req);
  try {
    return await service.signer.jwt.verify(token);
  } catch (e) {
    throw forbidden("bad_jwt", `invalid JWT: unable to parse or verify signature, ${(e as Error).message}`);
  }
}

/** The user (and session) of the claims; throws Auth's 4xx for a missing user or session. */
async function loadUserAndSession(service: AuthService, claims: Claims): Promise<Authenticated> {
  if (typeof claims.sub !== "string" || claims.sub === "") {
    throw forbidden("bad_jwt", "invalid claim: missing sub claim");
  }
  if (!UUID.test(claims.sub)) throw badRequest("bad_jwt", "invalid claim: sub claim must be a UUID");
  const user = await findUserById(service.db, claims.sub);
  if (!user) throw forbidden("user_not_found", "User from sub claim in JWT does not exist");

  let sessionId: string | null = null;
  const claimed = claims.session_id;
  if (claimed !== undefined && claimed !== "" && claimed !== NIL_UUID) {
    if (typeof claimed !== "string" || !UUID.test(claimed)) {
      throw forbidden("bad_jwt", "invalid claim: session_id claim must be a UUID");
    }
    if (!await sessionExists(service.db, claimed)) {
      throw forbidden("session_not_found", "Session from session_id claim in JWT does not exist");
    }
    sessionId = claimed;
  }
  return { claims, user, sessionId };
}

export const isBanned = (user: UserRecord) =>
  user.banned_until !== null && user.banned_until.getTime() > Date.now();

/** The signed-in caller of /user and /logout. */
export async function requireUser(service: AuthService, req: Request): Promise<Authenticated> {
  const caller = await loadUserAndSession(service, await verifiedClaims(service, req));
  if (isBanned(caller.user)) throw forbidden("user_banned", "User is banned");
  return caller;
}

/** The admin API's caller: a token with an admin role (a user token's session must still exist). */
export async function requireAdmin(service: AuthService, req: Request): Promise<Claims> {
  const claims = await verifiedClaims(service, req);
  if (typeof claims.session_id === "string" && claims.session_id !== "" && claims.session_id !== NIL_UUID) {
    await loadUserAndSession(service, claims);
  }
  if (typeof claims.role !== "string" || !service.config.adminRoles.includes(claims.role)) {
    throw forbidden("not_admin", "User not allowed");
  }
  return claims;
}
