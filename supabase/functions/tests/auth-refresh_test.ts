// refreshSession through supabase-js, against refresh tokens kept as Supabase Auth keeps them (auth.refresh_tokens:
// a chain per session with parent and revoked): rotation, the reuse interval ([auth] refresh_token_reuse_interval),
// reuse detection (a revoked token used again after it revokes the whole session's family), concurrency.
// "Time passing" beyond the reuse interval is made by moving the revocation time back in the database.
import assert from "node:assert/strict";
import { isAuthApiError } from "npm:@supabase/supabase-js@2.119.0";
import { decodeJwt } from "npm:jose@6.2.18";
import { authFetch, authScenario } from "./_lib/auth.ts";
import type { Sql } from "./_lib/db.ts";

type TokenRow = { token: string; parent: string | null; revoked: boolean; session_id: string };

const tokensOf = async (sql: Sql, userId: string) =>
  await sql<TokenRow[]>`
    select token, parent, revoked, session_id from auth.refresh_tokens where user_id = ${userId} order by id`;

/** Makes every revoked token of the user look revoked a minute ago (past the 10 s reuse interval). */
const revokedAMinuteAgo = async (sql: Sql, userId: string) =>
  await sql`update auth.refresh_tokens set updated_at = now() - interval '1 minute' where user_id = ${userId} and revoked`;

Deno.test("refreshSession rotates the refresh token: the old one is revoked and is the new one's parent", async () => {
  await authScenario(async ({ sql, signUp }) => {
    const { client, user, session } = await signUp();
    const { data, error } = await client.supabase.auth.refreshSession();
    assert.equal(error, null);
    assert.ok(data.session);
    assert.notEqual(data.session.refresh_token, session.refresh_token);
    assert.ok(data.session.expires_at! >= session.expires_at!);
    assert.equal(data.session.user.id, user.id);

    const tokens = await tokensOf(sql, user.id);
    assert.deepEqual(tokens.map((t) => [t.token, t.parent, t.revoked]), [
      [session.refresh_token, null, true],
      [data.session.refresh_token, session.refresh_token, false],
    ]);
    assert.equal(tokens[0].session_id, tokens[1].session_id, "one session, one token chain");
    const claims = decodeJwt(data.session.access_token);
    assert.equal(claims.session_id, tokens[0].session_id);
    assert.deepEqual((claims.amr as { method: string }[]).map((a) => a.method), ["password"], "amr kept");
    assert.equal((await client.supabase.auth.getUser()).error, null, "the new access token works");
  });
});

Deno.test("a revoked refresh token used again within the reuse interval gets the session's current token back", async () => {
  await authScenario(async ({ sql, signUp, client }) => {
    const { client: device, user, session } = await signUp();
    const { data: rotated } = await device.supabase.auth.refreshSession();
    // The client lost that answer and retries with the old token.
    const { data, error } = await client().supabase.auth.refreshSession({
      refresh_token: session.refresh_token,
    });
    assert.equal(error, null);
    assert.equal(data.session?.refresh_token, rotated.session?.refresh_token);
    assert.equal((await tokensOf(sql, user.id)).length, 2, "no new token was made");
  });
});

Deno.test("a revoked token reused outside the reuse interval is 400 refresh_token_already_used and revokes the family", async () => {
  await authScenario(async ({ sql, signUp, client }) => {
    const { client: device, user, session } = await signUp();
    await device.supabase.auth.refreshSession(); // token 2, child of token 1
    const { data: third } = await device.supabase.auth.refreshSession(); // token 3, child of token 2
    await revokedAMinuteAgo(sql, user.id);

    // Token 1 again, long after it was replaced: a stolen token being replayed.
    const replay = await client().supabase.auth.refreshSession({ refresh_token: session.refresh_token });
    assert.ok(isAuthApiError(replay.error), String(replay.error));
    assert.equal(replay.error.status, 400);
    assert.equal(replay.error.code, "refresh_token_already_used");
    assert.equal(replay.error.message, "Invalid Refresh Token: Already Used");

    const tokens = await tokensOf(sql, user.id);
    assert.ok(tokens.every((t) => t.revoked), "every token of the session is revoked");
    // Once the reuse interval has passed, the legitimate client's current token is refused too.
    await revokedAMinuteAgo(sql, user.id);
    const legit = await client().supabase.auth.refreshSession({
      refresh_token: third.session!.refresh_token,
    });
    assert.ok(isAuthApiError(legit.error), String(legit.error));
    assert.equal(legit.error.code, "refresh_token_already_used");
  });
});

Deno.test("two concurrent refreshes of one token both succeed with the same new token (the row is locked)", async () => {
  await authScenario(async ({ sql, signUp, client }) => {
    const { user, session } = await signUp();
    const [a, b] = await Promise.all([
      client().supabase.auth.refreshSession({ refresh_token: session.refresh_token }),
      client().supabase.auth.refreshSession({ refresh_token: session.refresh_token }),
    ]);
    assert.equal(a.error, null);
    assert.equal(b.error, null);
    assert.equal(a.data.session?.refresh_token, b.data.session?.refresh_token);
    assert.equal((await tokensOf(sql, user.id)).filter((t) => !t.revoked).length, 1);
  });
});

Deno.test("refreshSession with an unknown token is refresh_token_not_found; a malformed one is validation_failed", async () => {
  await authScenario(async ({ client }) => {
    const { supabase } = client();
    const unknown = await supabase.auth.refreshSession({ refresh_token: "abcdefghijkl" });
    assert.ok(isAuthApiError(unknown.error), String(unknown.error));
    assert.equal(unknown.error.status, 400);
    assert.equal(unknown.error.code, "refresh_token_not_found");
    assert.equal(unknown.error.message, "Invalid Refresh Token: Refresh Token Not Found");

    for (const refresh_token of ["short", "ABCDEFGHIJKL", "x".repeat(40)]) {
      const res = await authFetch("/token?grant_type=refresh_token", {
        method: "POST",
        body: { refresh_token },
        headers: { "x-supabase-api-version": "2024-01-01" },
      });
      assert.equal(res.status, 400, refresh_token);
      assert.equal(res.body?.code, "validation_failed");
    }
  });
});

Deno.test("POST /token with a grant type the stand-in does not serve is 400 unsupported_grant_type", async () => {
  const res = await authFetch("/token?grant_type=pkce", {
    method: "POST",
    body: { auth_code: "x", code_verifier: "y" },
    headers: { "x-supabase-api-version": "2024-01-01" },
  });
  assert.equal(res.status, 400);
  assert.deepEqual(res.body, { code: "invalid_credentials", message: "unsupported_grant_type" });
});
