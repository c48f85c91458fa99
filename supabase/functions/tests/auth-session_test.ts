// Sessions through supabase-js: signInWithPassword (and its refusals), getUser (GET /user checks the session
// still exists, as Auth does) and signOut with each scope (global, local, others): a signed-out session's
// refresh token stops working and its access token is refused by /user.
import assert from "node:assert/strict";
import { isAuthApiError, isAuthSessionMissingError } from "npm:@supabase/supabase-js@2.119.0";
import { authFetch, authScenario } from "./_lib/auth.ts";
import { stack } from "./_lib/stack.ts";
import { es256, hs256 } from "./_lib/tokens.ts";

const V2024 = { "x-supabase-api-version": "2024-01-01" };

Deno.test("signInWithPassword opens a new session for the user and records last_sign_in_at", async () => {
  await authScenario(async ({ sql, signUp, client }) => {
    const { email, password, user, session: first } = await signUp();
    const { supabase } = client();
    const { data, error } = await supabase.auth.signInWithPassword({ email: email.toUpperCase(), password });
    assert.equal(error, null);
    assert.ok(data.session && data.user);
    assert.equal(data.user.id, user.id);
    assert.notEqual(data.session.refresh_token, first.refresh_token);
    assert.equal(data.weakPassword, undefined);
    const sessions = await sql`select id from auth.sessions where user_id = ${user.id}`;
    assert.equal(sessions.length, 2, "one session per sign-in");
    assert.ok(new Date(data.user.last_sign_in_at!) >= new Date(user.last_sign_in_at!));
  });
});

Deno.test("signInWithPassword with a wrong password or an unknown email is the same 400 invalid_credentials", async () => {
  await authScenario(async ({ signUp, client, email }) => {
    const { email: known } = await signUp();
    const { supabase } = client();
    for (
      const credentials of [{ email: known, password: "wrong-password" }, {
        email: email(),
        password: "whatever",
      }]
    ) {
      const { data, error } = await supabase.auth.signInWithPassword(credentials);
      assert.ok(isAuthApiError(error), String(error));
      assert.equal(error.status, 400);
      assert.equal(error.code, "invalid_credentials");
      assert.equal(error.message, "Invalid login credentials");
      assert.equal(data.session, null);
    }
  });
});

Deno.test("signInWithPassword without an email, with a phone, or with both is refused as Auth refuses it", async () => {
  const cases = [
    { body: { password: "x" }, status: 400, code: "validation_failed" },
    { body: { phone: "+15555550100", password: "x" }, status: 422, code: "phone_provider_disabled" },
    {
      body: { email: "a@example.com", phone: "+15555550100", password: "x" },
      status: 400,
      code: "validation_failed",
    },
  ];
  for (const c of cases) {
    const res = await authFetch("/token?grant_type=password", {
      method: "POST",
      body: c.body,
      headers: V2024,
    });
    assert.equal(res.status, c.status, JSON.stringify(c.body));
    assert.equal(res.body?.code, c.code);
  }
});

Deno.test("signInWithPassword of a user whose email is not confirmed is 400 email_not_confirmed", async () => {
  await authScenario(async ({ client, email }) => {
    const admin = client({ key: "service_role" }).supabase.auth.admin;
    const address = email();
    const created = await admin.createUser({ email: address, password: "long-enough-1" });
    assert.equal(created.error, null);
    assert.equal(created.data.user?.email_confirmed_at, undefined);
    const { error } = await client().supabase.auth.signInWithPassword({
      email: address,
      password: "long-enough-1",
    });
    assert.ok(isAuthApiError(error), String(error));
    assert.equal(error.code, "email_not_confirmed");
  });
});

Deno.test("signInWithPassword with a password today's rules call weak signs in and says so (weak_password)", async () => {
  await authScenario(async ({ client, email }) => {
    const admin = client({ key: "service_role" }).supabase.auth.admin;
    const address = email();
    // The admin API does not check strength (as in Auth), so a short password can exist.
    assert.equal(
      (await admin.createUser({ email: address, password: "abc", email_confirm: true })).error,
      null,
    );
    const { data, error } = await client().supabase.auth.signInWithPassword({
      email: address,
      password: "abc",
    });
    assert.equal(error, null);
    assert.ok(data.session);
    assert.deepEqual(data.weakPassword, {
      message: "Password should be at least 6 characters.",
      reasons: ["length"],
    });
  });
});

Deno.test("a banned user cannot sign in, refresh or use /user (user_banned) until the ban is lifted", async () => {
  await authScenario(async ({ signUp, client }) => {
    const { user, email, password, session } = await signUp();
    const admin = client({ key: "service_role" }).supabase.auth.admin;
    const banning = await admin.updateUserById(user.id, { ban_duration: "1h30m" });
    assert.ok(new Date(banning.data.user!.banned_until!).getTime() > Date.now() + 89 * 60_000);
    const banned = await client().supabase.auth.signInWithPassword({ email, password });
    assert.ok(isAuthApiError(banned.error), String(banned.error));
    assert.equal(banned.error.code, "user_banned");
    const refresh = await client().supabase.auth.refreshSession({ refresh_token: session.refresh_token });
    assert.equal(refresh.error?.code, "user_banned");
    const me = await authFetch("/user", { token: session.access_token, headers: V2024 });
    assert.equal(me.status, 403);
    assert.equal(me.body?.code, "user_banned");
    const badDuration = await admin.updateUserById(user.id, { ban_duration: "1 day" });
    assert.equal(badDuration.error?.code, "validation_failed");
    assert.equal((await admin.updateUserById(user.id, { ban_duration: "none" })).error, null);
    assert.equal((await client().supabase.auth.signInWithPassword({ email, password })).error, null);
  });
});

Deno.test("getUser answers the signed-in user from GET /user", async () => {
  await authScenario(async ({ signUp }) => {
    const { client, user, session } = await signUp({ full_name: "Alan Turing" });
    const { data, error } = await client.supabase.auth.getUser();
    assert.equal(error, null);
    assert.equal(data.user?.id, user.id);
    assert.equal(data.user?.email, user.email);
    assert.deepEqual(data.user?.user_metadata, { full_name: "Alan Turing", email_verified: true });
    // With an explicit token, as a server does.
    const byToken = await client.supabase.auth.getUser(session.access_token);
    assert.equal(byToken.data.user?.id, user.id);
  });
});

Deno.test("GET /user for another audience (X-JWT-AUD) than the token's is 400 validation_failed", async () => {
  await authScenario(async ({ signUp }) => {
    const { session } = await signUp();
    const res = await authFetch("/user", {
      token: session.access_token,
      headers: { ...V2024, "x-jwt-aud": "other" },
    });
    assert.equal(res.status, 400);
    assert.deepEqual(res.body, {
      code: "validation_failed",
      message: "Token audience doesn't match request audience",
    });
  });
});

Deno.test("GET /user without a token is 401 no_authorization; a forged or key token is 403 bad_jwt", async () => {
  const none = await authFetch("/user", { headers: V2024 });
  assert.equal(none.status, 401);
  assert.equal(none.body?.code, "no_authorization");
  const forged = await authFetch("/user", {
    token: await hs256(
      { sub: crypto.randomUUID(), role: "authenticated" },
      "a-secret-that-is-not-the-project-one",
    ),
    headers: V2024,
  });
  assert.equal(forged.status, 403);
  assert.equal(forged.body?.code, "bad_jwt");
  const anonKey = await authFetch("/user", { token: stack.anonKey, headers: V2024 });
  assert.equal(anonKey.status, 403);
  assert.equal(anonKey.body?.code, "bad_jwt");
  assert.equal(anonKey.body?.message, "invalid claim: missing sub claim");
});

Deno.test("GET /user with a sub or session_id that is not a UUID is refused as bad_jwt", async () => {
  await authScenario(async ({ signUp }) => {
    const { user } = await signUp();
    const notUuidSub = await authFetch("/user", {
      token: await es256({ sub: "admin", role: "authenticated" }),
      headers: V2024,
    });
    assert.equal(notUuidSub.status, 400);
    assert.equal(notUuidSub.body?.code, "bad_jwt");
    const badSession = await authFetch("/user", {
      token: await es256({ sub: user.id, role: "authenticated", aud: "authenticated", session_id: "x" }),
      headers: V2024,
    });
    assert.equal(badSession.status, 403);
    assert.equal(badSession.body?.code, "bad_jwt");
  });
});

Deno.test("GET /user with the token of a user that no longer exists is 403 user_not_found", async () => {
  const token = await es256({ sub: crypto.randomUUID(), role: "authenticated", aud: "authenticated" });
  const res = await authFetch("/user", { token, headers: V2024 });
  assert.equal(res.status, 403);
  assert.equal(res.body?.code, "user_not_found");
});

Deno.test("signOut (global) ends every session: refresh tokens stop working, /user refuses the access tokens", async () => {
  await authScenario(async ({ signUp, client }) => {
    const { client: first, email, password, session: firstSession } = await signUp();
    const second = client();
    const { data: secondSignIn } = await second.supabase.auth.signInWithPassword({ email, password });
    assert.ok(secondSignIn.session);

    const { error } = await first.supabase.auth.signOut();
    assert.equal(error, null);
    assert.equal(
      (await first.supabase.auth.getSession()).data.session,
      null,
      "the client forgot the session",
    );

    for (const session of [firstSession, secondSignIn.session]) {
      const refreshed = await client().supabase.auth.refreshSession({ refresh_token: session.refresh_token });
      assert.ok(isAuthApiError(refreshed.error), String(refreshed.error));
      assert.equal(refreshed.error.code, "refresh_token_not_found");

      // GoTrue's GET /user checks the session: 403 session_not_found, which auth-js reports as a missing session.
      const user = await client().supabase.auth.getUser(session.access_token);
      assert.ok(isAuthSessionMissingError(user.error), String(user.error));
      const raw = await authFetch("/user", { token: session.access_token, headers: V2024 });
      assert.equal(raw.status, 403);
      assert.equal(raw.body?.code, "session_not_found");
    }
  });
});

Deno.test("signOut({ scope: 'local' }) ends only this session; another device stays signed in", async () => {
  await authScenario(async ({ signUp, client }) => {
    const { client: phone, email, password, session: phoneSession } = await signUp();
    const laptop = client();
    await laptop.supabase.auth.signInWithPassword({ email, password });

    assert.equal((await phone.supabase.auth.signOut({ scope: "local" })).error, null);
    const gone = await authFetch("/user", { token: phoneSession.access_token, headers: V2024 });
    assert.equal(gone.body?.code, "session_not_found");
    const stillThere = await laptop.supabase.auth.getUser();
    assert.equal(stillThere.error, null);
    assert.equal((await laptop.supabase.auth.refreshSession()).error, null);
  });
});

Deno.test("signOut({ scope: 'others' }) ends every other session and keeps this one", async () => {
  await authScenario(async ({ signUp, client }) => {
    const { client: phone, email, password } = await signUp();
    const laptop = client();
    const { data } = await laptop.supabase.auth.signInWithPassword({ email, password });

    assert.equal((await phone.supabase.auth.signOut({ scope: "others" })).error, null);
    assert.equal((await phone.supabase.auth.getUser()).error, null, "this session goes on");
    const other = await authFetch("/user", { token: data.session!.access_token, headers: V2024 });
    assert.equal(other.status, 403);
    assert.equal(other.body?.code, "session_not_found");
  });
});

Deno.test("POST /logout answers 204, and an unknown scope is 400 validation_failed", async () => {
  await authScenario(async ({ signUp }) => {
    const { session } = await signUp();
    const bad = await authFetch("/logout?scope=everywhere", {
      method: "POST",
      token: session.access_token,
      headers: V2024,
    });
    assert.equal(bad.status, 400);
    assert.equal(bad.body?.code, "validation_failed");
    const ok = await authFetch("/logout?scope=local", { method: "POST", token: session.access_token });
    assert.equal(ok.status, 204);
    assert.equal(ok.text, "");
  });
});
