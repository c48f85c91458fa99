// Access tokens and sessions as Supabase Auth issues them. The access token carries Auth's claims (iss, sub,
// aud, exp, iat, email, phone, app_metadata, user_metadata, role, aal, amr, session_id, is_anonymous) and is
// signed by keys-file.ts (ES256 with the stack's key and its kid, so the published JWKS verifies it). A session
// answer is `{ access_token, token_type, expires_in, expires_at, refresh_token, user }`.
import type { ProjectJwt } from "../keys-file.ts";
import type { AuthConfig } from "./config.ts";
import type { Db } from "./db.ts";
import {
  addAmrClaim,
  type AmrEntry,
  createSession,
  insertRefreshToken,
  sessionAmr,
} from "./store/sessions.ts";
import { findUserById, recordSignIn, type UserRecord } from "./store/users.ts";
import { type UserJson, userJson } from "./user-json.ts";

export type Signer = { config: AuthConfig; jwt: ProjectJwt };

export type SessionJson = {
  access_token: string;
  token_type: "bearer";
  expires_in: number;
  expires_at: number;
  refresh_token: string;
  user: UserJson;
};

/** Where a sign-in or refresh comes from (kept on the session). */
export type Client = { ip: string; userAgent: string | null };

export async function signAccessToken(
  signer: Signer,
  user: UserRecord,
  sessionId: string,
  amr: AmrEntry[],
): Promise<{ token: string; expiresAt: number }> {
  const issuedAt = Math.floor(Date.now() / 1000);
  const expiresAt = issuedAt + signer.config.jwtExpiry;
  const token = await signer.jwt.sign({
    iss: signer.config.issuer,
    sub: user.id,
    aud: user.aud,
    exp: expiresAt,
    iat: issuedAt,
    email: user.email ?? "",
    phone: user.phone ?? "",
    app_metadata: user.app_metadata,
    user_metadata: user.user_metadata,
    role: user.role,
    aal: "aal1",
    amr,
    session_id: sessionId,
    is_anonymous: user.is_anonymous,
  });
  return { token, expiresAt };
}

/** The session answer for a session whose refresh token is `refreshToken`; signs a new access token. */
export async function sessionJson(
  db: Db,
  signer: Signer,
  user: UserRecord,
  sessionId: string,
  refreshToken: string,
): Promise<SessionJson> {
  const { token, expiresAt } = await signAccessToken(
    signer,
    user,
    sessionId,
    await sessionAmr(db, sessionId),
  );
  return {
    access_token: token,
    token_type: "bearer",
    expires_in: Math.max(0, expiresAt - Math.floor(Date.now() / 1000)),
    expires_at: expiresAt,
    refresh_token: refreshToken,
    user: userJson(user),
  };
}

/**
 * Signs the user in: a new session with its first refresh token and the sign-in method as its amr, and the
 * user's last_sign_in_at. Run it inside the transaction of the request.
 */
export async function issueSession(
  db: Db,
  signer: Signer,
  userId: string,
  client: Client,
  method = "password",
): Promise<SessionJson> {
  const sessionId = await createSession(db, { userId, ...client });
  const refreshToken = await insertRefreshToken(db, { userId, sessionId, parent: null });
  await addAmrClaim(db, sessionId, method);
  await recordSignIn(db, userId);
  const user = await findUserById(db, userId);
  if (!user) throw new Error(`user ${userId} vanished while signing in`);
  return await sessionJson(db, signer, user, sessionId, refreshToken);
}
