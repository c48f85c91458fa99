// SQL for auth.sessions, auth.refresh_tokens and auth.mfa_amr_claims, as Supabase Auth keeps them: a session per
// sign-in, a chain of refresh tokens in it (each new one's `parent` is the token it replaced, which is revoked),
// and the sign-in methods of the session (its `amr`). Deleting a session cascades to its tokens and claims.
import type { Db } from "../db.ts";

export type RefreshTokenRow = {
  id: string;
  token: string;
  user_id: string;
  session_id: string | null;
  parent: string | null;
  revoked: boolean;
  updated_at: Date;
};

export type AmrEntry = { method: string; timestamp: number };

/** A refresh token as Auth makes them: 12 characters of lowercase base32 (60 random bits). */
export function newRefreshToken(): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyz234567";
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return Array.from(bytes, (b) => alphabet[b & 31]).join("");
}

export async function createSession(
  db: Db,
  session: { userId: string; ip: string; userAgent: string | null },
): Promise<string> {
  const [row] = await db<{ id: string }[]>`
    insert into auth.sessions (id, user_id, created_at, updated_at, aal, ip, user_agent)
    values (${crypto.randomUUID()}, ${session.userId}, now(), now(), 'aal1', ${session.ip}::inet, ${session.userAgent})
    returning id`;
  return row.id;
}

export async function sessionExists(db: Db, sessionId: string): Promise<boolean> {
  const [row] = await db<
    { found: boolean }[]
  >`select exists (select 1 from auth.sessions where id = ${sessionId}) as found`;
  return row.found;
}

/** Records (or renews) how the session signed in. */
export async function addAmrClaim(db: Db, sessionId: string, method: string): Promise<void> {
  await db`
    insert into auth.mfa_amr_claims (id, session_id, created_at, updated_at, authentication_method)
    values (${crypto.randomUUID()}, ${sessionId}, now(), now(), ${method})
    on conflict on constraint mfa_amr_claims_session_id_authentication_method_pkey do update set updated_at = now()`;
}

/** The session's sign-in methods, most recent first. */
export async function sessionAmr(db: Db, sessionId: string): Promise<AmrEntry[]> {
  return [
    ...await db<AmrEntry[]>`
    select authentication_method as method, extract(epoch from updated_at)::bigint::int as timestamp
      from auth.mfa_amr_claims where session_id = ${sessionId}
     order by updated_at desc`,
  ];
}

export async function insertRefreshToken(
  db: Db,
  token: { userId: string; sessionId: string; parent: string | null },
): Promise<string> {
  const value = newRefreshToken();
  await db`
    insert into auth.refresh_tokens (instance_id, token, user_id, revoked, created_at, updated_at, parent, session_id)
    values ('00000000-0000-0000-0000-000000000000', ${value}, ${token.userId}, false, now(), now(), ${token.parent},
            ${token.sessionId})`;
  return value;
}

/** The refresh token, its row and its session's row locked until the transaction ends; null if unknown. */
export async function lockRefreshToken(db: Db, token: string): Promise<RefreshTokenRow | null> {
  const [row] = await db<RefreshTokenRow[]>`
    select id::text, token, user_id, session_id, parent, revoked, updated_at
      from auth.refresh_tokens where token = ${token} for update`;
  if (row?.session_id) await db`select 1 from auth.sessions where id = ${row.session_id} for update`;
  return row ?? null;
}

/** The session's newest refresh token that is not revoked. */
export async function activeRefreshToken(db: Db, sessionId: string): Promise<RefreshTokenRow | null> {
  const [row] = await db<RefreshTokenRow[]>`
    select id::text, token, user_id, session_id, parent, revoked, updated_at
      from auth.refresh_tokens where session_id = ${sessionId} and not revoked
     order by id desc limit 1`;
  return row ?? null;
}

export async function revokeRefreshToken(db: Db, id: string): Promise<void> {
  await db`update auth.refresh_tokens set revoked = true, updated_at = now() where id = ${id}`;
}

/** Revokes every token of the session (Auth's answer to a reused refresh token). */
export async function revokeSessionTokens(db: Db, sessionId: string): Promise<void> {
  await db`
    update auth.refresh_tokens set revoked = true, updated_at = now() where session_id = ${sessionId} and not revoked`;
}

export async function deleteRefreshToken(db: Db, id: string): Promise<void> {
  await db`delete from auth.refresh_tokens where id = ${id}`;
}

/** Notes a refresh of the session: when, from where, with which client. */
export async function touchSession(
  db: Db,
  sessionId: string,
  client: { ip: string; userAgent: string | null },
): Promise<void> {
  await db`
    update auth.sessions
       set refreshed_at = now() at time zone 'utc', updated_at = now(), ip = ${client.ip}::inet,
           user_agent = ${client.userAgent}
     where id = ${sessionId}`;
}

export async function deleteSession(db: Db, sessionId: string): Promise<void> {
  await db`delete from auth.sessions where id = ${sessionId}`;
}

export async function deleteUserSessions(db: Db, userId: string): Promise<void> {
  await db`delete from auth.sessions where user_id = ${userId}`;
}

export async function deleteOtherSessions(db: Db, userId: string, keepSessionId: string): Promise<void> {
  await db`delete from auth.sessions where user_id = ${userId} and id <> ${keepSessionId}`;
}
