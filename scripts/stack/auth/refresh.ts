// The refresh_token grant as Supabase Auth runs it on its refresh_tokens table. The token's row and session are
// locked, so concurrent refreshes of one token queue up. A live token is revoked and replaced by a new one whose
// parent it is (rotation). A revoked token is still honoured when it is the parent of the session's live token
// (the client lost the answer: it gets that token back) or within refresh_token_reuse_interval seconds of its
// revocation; outside of that it is a reuse: with rotation enabled every token of the session is revoked, and
// the answer is 400 refresh_token_already_used (the revocation is committed).
import type { AuthService } from "./context.ts";
import { AuthError, badRequest } from "./errors.ts";
import { isBanned } from "./authenticate.ts";
import {
  activeRefreshToken,
  deleteRefreshToken,
  insertRefreshToken,
  lockRefreshToken,
  revokeRefreshToken,
  revokeSessionTokens,
  sessionExists,
  touchSession,
} from "./store/sessions.ts";
import { findUserById } from "./store/users.ts";
import { type Client, type SessionJson, sessionJson } from "./tokens.ts";

const LEGACY_TOKEN = /^[a-z0-9]{12}$/;

export async function refreshSession(
  service: AuthService,
  refreshToken: string,
  client: Client,
): Promise<SessionJson> {
  if (!LEGACY_TOKEN.test(refreshToken)) throw badRequest("validation_failed", "Refresh token is not valid");

  // Errors whose changes must stay (a revoked family, a token without session removed) are returned, not thrown,
  // so the transaction commits first.
  const outcome = await service.db.begin(async (tx): Promise<SessionJson | AuthError> => {
    const token = await lockRefreshToken(tx, refreshToken);
    const user = token && await findUserById(tx, token.user_id);
    if (!token || !user) {
      return badRequest("refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found");
    }
    if (isBanned(user)) return badRequest("user_banned", "Invalid Refresh Token: User Banned");
    if (!token.session_id || !await sessionExists(tx, token.session_id)) {
      await deleteRefreshToken(tx, token.id);
      return badRequest("session_not_found", "Invalid Refresh Token: No Valid Session Found");
    }
    const sessionId = token.session_id;

    let issued: string | null = null;
    if (token.revoked) {
      const active = await activeRefreshToken(tx, sessionId);
      if (active && active.parent === token.token) {
        issued = active.token;
      } else if (Date.now() > token.updated_at.getTime() + service.config.refreshTokenReuseInterval * 1000) {
        if (service.config.refreshTokenRotation) await revokeSessionTokens(tx, sessionId);
        service.log("warn", "refresh token reused outside the reuse interval", { session_id: sessionId });
        return badRequest("refresh_token_already_used", "Invalid Refresh Token: Already Used");
      }
    }
    if (!issued) {
      await revokeRefreshToken(tx, token.id);
      issued = await insertRefreshToken(tx, { userId: user.id, sessionId, parent: token.token });
    }
    await touchSession(tx, sessionId, client);
    return await sessionJson(tx, service.signer, user, sessionId, issued);
  });
  if (outcome instanceof AuthError) throw outcome;
  return outcome;
}
