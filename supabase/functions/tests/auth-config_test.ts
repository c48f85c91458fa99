// The Auth stand-in honours supabase/config.toml's [auth] settings (read as the CLI hands them to Auth) and their
// SUPABASE_AUTH_* overrides: shown on instances of its own started with other values — sign-ups disabled,
// stricter passwords, a shorter jwt_expiry, rotation off, email confirmations on — and on SIGHUP (what
// db:reset sends), after which it still serves.
import assert from "node:assert/strict";
import { isAuthApiError, isAuthWeakPasswordError } from "npm:@supabase/supabase-js@2.119.0";
import { decodeJwt } from "npm:jose@6.2.18";
import { parse as parseToml } from "npm:smol-toml@1.4.2";
import { authConfigFrom } from "../../../scripts/stack/auth/config.ts";
import { authScenario, startAuthInstance, testPassword } from "./_lib/auth.ts";

const toml = parseToml(await Deno.readTextFile(new URL("../../config.toml", import.meta.url)));
const noEnv = () => undefined;

Deno.test("the settings read from this project's config.toml are the ones `supabase start` gives Auth", () => {
  const config = authConfigFrom(toml, noEnv);
  assert.equal(config.issuer, "http://127.0.0.1:54321/auth/v1");
  assert.equal(config.jwtExpiry, 3600);
  assert.equal(config.enableSignup, true);
  assert.deepEqual(config.email, { enableSignup: true, enableConfirmations: false });
  assert.deepEqual(config.password, { minLength: 6, requiredCharacters: [] });
  assert.equal(config.refreshTokenRotation, true);
  assert.equal(config.refreshTokenReuseInterval, 10);
  assert.deepEqual(config.rateLimits, { signInSignUps: 30, tokenRefresh: 150 });
  assert.deepEqual(config.adminRoles, ["service_role"]);
});

Deno.test("SUPABASE_AUTH_* env vars and env(NAME) values override config.toml; bad values are refused", () => {
  const env: Record<string, string> = {
    SUPABASE_AUTH_JWT_EXPIRY: "120",
    SUPABASE_AUTH_ENABLE_SIGNUP: "false",
    SUPABASE_AUTH_PASSWORD_REQUIREMENTS: "letters_digits",
    SUPABASE_AUTH_RATE_LIMIT_SIGN_IN_SIGN_UPS: "5",
    MY_ISSUER: "https://auth.example.test/auth/v1",
  };
  const config = authConfigFrom(
    { ...toml, auth: { ...(toml.auth as object), jwt_issuer: "env(MY_ISSUER)" } },
    (n) => env[n],
  );
  assert.equal(config.jwtExpiry, 120);
  assert.equal(config.enableSignup, false);
  assert.equal(config.password.requiredCharacters.length, 2);
  assert.equal(config.rateLimits.signInSignUps, 5);
  assert.equal(config.issuer, "https://auth.example.test/auth/v1");

  const refused: Record<string, string>[] = [
    { SUPABASE_AUTH_JWT_EXPIRY: "0" },
    { SUPABASE_AUTH_PASSWORD_REQUIREMENTS: "emoji" },
    { SUPABASE_AUTH_ENABLE_SIGNUP: "maybe" },
    { SUPABASE_AUTH_RATE_LIMIT_TOKEN_REFRESH: "-1" },
  ];
  for (const bad of refused) assert.throws(() => authConfigFrom(toml, (n) => bad[n]), JSON.stringify(bad));
});

Deno.test("with enable_signup = false, signUp is 422 signup_disabled while existing users still sign in", async () => {
  await using auth = await startAuthInstance({ SUPABASE_AUTH_ENABLE_SIGNUP: "false" });
  await authScenario(async ({ signUp, email }) => {
    const { email: existing, password } = await signUp(); // through the stack's own Auth
    const { data, error } = await auth.client().signUp({ email: email(), password: testPassword() });
    assert.ok(isAuthApiError(error), String(error));
    assert.equal(error.status, 422);
    assert.equal(error.code, "signup_disabled");
    assert.equal(data.user, null);
    assert.equal((await auth.client().signInWithPassword({ email: existing, password })).error, null);
  });
});

Deno.test("with [auth.email] enable_signup = false, email sign-ups and sign-ins are email_provider_disabled", async () => {
  await using auth = await startAuthInstance({ SUPABASE_AUTH_EMAIL_ENABLE_SIGNUP: "false" });
  await authScenario(async ({ signUp, email }) => {
    const { email: existing, password } = await signUp();
    const up = await auth.client().signUp({ email: email(), password: testPassword() });
    assert.equal(up.error?.status, 400);
    assert.equal(up.error?.code, "email_provider_disabled");
    const signIn = await auth.client().signInWithPassword({ email: existing, password });
    assert.equal(signIn.error?.status, 422);
    assert.equal(signIn.error?.code, "email_provider_disabled");
  });
});

Deno.test("stricter password rules, a shorter jwt_expiry and rotation off are honoured", async () => {
  await using auth = await startAuthInstance({
    SUPABASE_AUTH_MINIMUM_PASSWORD_LENGTH: "10",
    SUPABASE_AUTH_PASSWORD_REQUIREMENTS: "lower_upper_letters_digits",
    SUPABASE_AUTH_JWT_EXPIRY: "120",
    SUPABASE_AUTH_ENABLE_REFRESH_TOKEN_ROTATION: "false",
  });
  await authScenario(async ({ sql, email }) => {
    const weak = await auth.client().signUp({ email: email(), password: "short" });
    assert.ok(isAuthWeakPasswordError(weak.error), String(weak.error));
    assert.deepEqual(weak.error.reasons, ["length", "characters"]);
    assert.match(
      weak.error.message,
      /at least 10 characters.*one character of each: abc.*, ABC.*, 0123456789\./,
    );

    const device = auth.client();
    const { data, error } = await device.signUp({ email: email(), password: "Long-Enough-Pa55" });
    assert.equal(error, null);
    const claims = decodeJwt(data.session!.access_token);
    assert.equal(claims.exp! - claims.iat!, 120);
    assert.equal(data.session!.expires_in, 120);

    // Rotation off: a token reused after the interval is refused, but the session's family is left alone.
    const first = data.session!.refresh_token;
    await device.refreshSession();
    const { data: third } = await device.refreshSession();
    await sql`update auth.refresh_tokens set updated_at = now() - interval '1 minute' where token = ${first}`;
    const reuse = await auth.client().refreshSession({ refresh_token: first });
    assert.equal(reuse.error?.code, "refresh_token_already_used");
    const current = await auth.client().refreshSession({ refresh_token: third.session!.refresh_token });
    assert.equal(current.error, null, "the current token still works");
  });
});

Deno.test("with email confirmations on, signUp returns an unconfirmed user (no session) who cannot sign in yet", async () => {
  await using auth = await startAuthInstance({ SUPABASE_AUTH_EMAIL_ENABLE_CONFIRMATIONS: "true" });
  await authScenario(async ({ email, client }) => {
    const address = email("mailbox.org");
    const password = testPassword();
    const { data, error } = await auth.client().signUp({ email: address, password });
    assert.equal(error, null);
    assert.equal(data.session, null);
    assert.equal(data.user?.email, address);
    assert.equal(data.user?.email_confirmed_at, undefined);
    const signIn = await auth.client().signInWithPassword({ email: address, password });
    assert.equal(signIn.error?.code, "email_not_confirmed");

    // Confirmed by an admin (locally no mail is sent), the user signs in.
    const admin = client({ key: "service_role" }).supabase.auth.admin;
    assert.equal((await admin.updateUserById(data.user!.id, { email_confirm: true })).error, null);
    assert.equal((await auth.client().signInWithPassword({ email: address, password })).error, null);

    // Signing up again with a confirmed address answers a made-up user, so the answer does not tell.
    const again = await auth.client().signUp({ email: address, password: testPassword() });
    assert.equal(again.error, null);
    assert.notEqual(again.data.user?.id, data.user!.id);
  });
});

Deno.test("with email confirmations on, an address hosted Auth would not mail is 400 email_address_invalid", async () => {
  await using auth = await startAuthInstance({ SUPABASE_AUTH_EMAIL_ENABLE_CONFIRMATIONS: "true" });
  await authScenario(async ({ email }) => {
    for (const address of [email("example.com"), email("localhost"), email("mail.invalid")]) {
      const { error } = await auth.client().signUp({ email: address, password: testPassword() });
      assert.ok(isAuthApiError(error), String(error));
      assert.equal(error.status, 400);
      assert.equal(error.code, "email_address_invalid");
      assert.equal(error.message, `Email address "${address}" is invalid`);
    }
  });
});

Deno.test("the service keeps serving after SIGHUP (what db:reset sends it), on a new database pool", async () => {
  await using auth = await startAuthInstance({});
  await authScenario(async ({ email }) => {
    auth.signal("SIGHUP");
    await new Promise((r) => setTimeout(r, 300));
    const { error } = await auth.client().signUp({ email: email(), password: testPassword() });
    assert.equal(error, null);
  });
});
