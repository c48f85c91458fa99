// Sign-up through supabase-js against the Auth stand-in (http://…/auth/v1 behind the gateway): the session and
// user it answers with, what lands in the database (bcrypt password, email identity, the product's rows made by
// the auth.users trigger), and every refusal with Auth's error code, changing nothing.
import assert from "node:assert/strict";
import { isAuthApiError, isAuthWeakPasswordError } from "npm:@supabase/supabase-js@2.119.0";
import { authFetch, authScenario, testEmail } from "./_lib/auth.ts";

const userCount = async (sql: import("./_lib/db.ts").Sql, email: string) =>
  (await sql<
    { n: number }[]
  >`select count(*)::int as n from auth.users where lower(email) = lower(${email})`)[0].n;

Deno.test("signUp returns a session and a confirmed user at once (email confirmation is off locally)", async () => {
  await authScenario(async ({ client, email }) => {
    const { supabase } = client();
    const address = email();
    const { data, error } = await supabase.auth.signUp({
      email: address,
      password: "correct-horse-1",
      options: { data: { full_name: "Ada Lovelace" } },
    });
    assert.equal(error, null);
    const { session, user } = data;
    assert.ok(session && user);
    assert.equal(session.token_type, "bearer");
    assert.equal(session.expires_in, 3600);
    assert.ok(Math.abs(session.expires_at! - (Math.floor(Date.now() / 1000) + 3600)) <= 5);
    assert.match(session.refresh_token, /^[a-z0-9]{12}$/);
    assert.equal(session.user.id, user.id);

    assert.equal(user.email, address);
    assert.equal(user.aud, "authenticated");
    assert.equal(user.role, "authenticated");
    assert.equal(user.phone, "");
    assert.equal(user.is_anonymous, false);
    assert.ok(user.email_confirmed_at && user.confirmed_at && user.last_sign_in_at && user.created_at);
    assert.deepEqual(user.app_metadata, { provider: "email", providers: ["email"] });
    assert.deepEqual(user.user_metadata, { full_name: "Ada Lovelace", email_verified: true });
    assert.equal(user.identities?.length, 1);
    assert.equal(user.identities![0].provider, "email");
    assert.equal(user.identities![0].id, user.id);
    assert.equal(user.identities![0].identity_data?.email, address);

    // The client holds the session: it is signed in.
    const { data: current } = await supabase.auth.getSession();
    assert.equal(current.session?.access_token, session.access_token);
  });
});

Deno.test("signUp stores the password as Supabase Auth does: bcrypt cost 10 ($2a$10$) in auth.users", async () => {
  await authScenario(async ({ sql, signUp }) => {
    const { user, password } = await signUp();
    const [row] = await sql<{ hash: string; matches: boolean; wrong: boolean }[]>`
      select encrypted_password as hash,
             extensions.crypt(${password}, encrypted_password) = encrypted_password as matches,
             extensions.crypt('not-it', encrypted_password) = encrypted_password as wrong
        from auth.users where id = ${user.id}`;
    assert.match(row.hash, /^\$2a\$10\$[./A-Za-z0-9]{53}$/);
    assert.equal(row.matches, true);
    assert.equal(row.wrong, false);
  });
});

Deno.test("signUp makes one email identity as Auth does, and the trigger makes the product's rows", async () => {
  await authScenario(async ({ sql, signUp }) => {
    const { user, email } = await signUp({ full_name: "Grace Hopper" });
    const identities = await sql`
      select provider, provider_id, email, identity_data from auth.identities where user_id = ${user.id}`;
    assert.equal(identities.length, 1);
    assert.equal(identities[0].provider, "email");
    assert.equal(identities[0].provider_id, user.id);
    assert.equal(identities[0].email, email);
    assert.deepEqual(identities[0].identity_data, {
      sub: user.id,
      email,
      email_verified: false,
      phone_verified: false,
      full_name: "Grace Hopper",
    });

    const [product] = await sql`
      select u.email, u.plan, p.display_name, (s.user_id is not null) as has_settings, b.balance
        from public.users u
        join public.user_profiles p on p.user_id = u.id
        join public.user_settings s on s.user_id = u.id
        join public.token_balances b on b.user_id = u.id
       where u.id = ${user.id}`;
    assert.ok(product, "public.users, user_profiles, user_settings and token_balances rows exist");
    assert.equal(product.email, email);
    assert.equal(product.plan, "free");
    assert.equal(product.display_name, "Grace Hopper");
  });
});

Deno.test("signUp with an email already registered is 422 user_already_exists and adds no user", async () => {
  await authScenario(async ({ sql, signUp, client }) => {
    const { email } = await signUp();
    const { data, error } = await client().supabase.auth.signUp({
      email: email.toUpperCase(),
      password: "another-1",
    });
    assert.ok(isAuthApiError(error), String(error));
    assert.equal(error.status, 422);
    assert.equal(error.code, "user_already_exists");
    assert.equal(error.message, "User already registered");
    assert.equal(data.session, null);
    assert.equal(await userCount(sql, email), 1);
  });
});

Deno.test("signUp with a password under minimum_password_length is 422 weak_password (reason length)", async () => {
  await authScenario(async ({ sql, client, email }) => {
    const address = email();
    const { error } = await client().supabase.auth.signUp({ email: address, password: "12345" });
    assert.ok(isAuthWeakPasswordError(error), String(error));
    assert.equal(error.status, 422);
    assert.equal(error.code, "weak_password");
    assert.deepEqual(error.reasons, ["length"]);
    assert.equal(error.message, "Password should be at least 6 characters.");
    assert.equal(await userCount(sql, address), 0);
  });
});

Deno.test("signUp refuses a malformed email, a missing password and one over 72 bytes with 400 validation_failed", async () => {
  await authScenario(async ({ sql, client }) => {
    const { supabase } = client();
    const cases = [
      {
        email: "not-an-email",
        password: "long-enough-1",
        message: "Unable to validate email address: invalid format",
      },
      {
        email: `${"a".repeat(250)}@example.com`,
        password: "long-enough-1",
        message: "An email address is too long",
      },
      { email: testEmail(), password: "", message: "Signup requires a valid password" },
      {
        email: testEmail(),
        password: "x".repeat(73),
        message: "Password cannot be longer than 72 characters",
      },
    ];
    for (const c of cases) {
      const { data, error } = await supabase.auth.signUp({ email: c.email, password: c.password });
      assert.ok(isAuthApiError(error), `${c.email}: ${error}`);
      assert.equal(error.status, 400);
      assert.equal(error.code, "validation_failed");
      assert.equal(error.message, c.message);
      assert.equal(data.user, null);
      assert.equal(await userCount(sql, c.email), 0);
    }
  });
});

Deno.test("signUp with neither email nor phone (an anonymous sign-in) is 422 anonymous_provider_disabled", async () => {
  await authScenario(async ({ client }) => {
    const { error } = await client().supabase.auth.signInAnonymously();
    assert.ok(isAuthApiError(error), String(error));
    assert.equal(error.status, 422);
    assert.equal(error.code, "anonymous_provider_disabled");
  });
});

Deno.test("signUp with a phone number is 400 phone_provider_disabled ([auth.sms] enable_signup is off)", async () => {
  await authScenario(async ({ client }) => {
    const { error } = await client().supabase.auth.signUp({
      phone: "+15555550100",
      password: "long-enough-1",
    });
    assert.ok(isAuthApiError(error), String(error));
    assert.equal(error.status, 400);
    assert.equal(error.code, "phone_provider_disabled");
  });
});

Deno.test("a body over 1 MiB is 413 request_entity_too_large", async () => {
  const res = await authFetch("/signup", {
    method: "POST",
    body: { email: testEmail(), password: "long-enough-1", data: { blob: "x".repeat(1024 * 1024) } },
    headers: { "x-supabase-api-version": "2024-01-01" },
  });
  assert.equal(res.status, 413);
  assert.equal(res.body?.code, "request_entity_too_large");
});

Deno.test("signUp of an address an admin created unconfirmed confirms it and signs in, keeping its password", async () => {
  await authScenario(async ({ sql, client, email }) => {
    // Auth's behaviour with confirmations off: the existing unconfirmed user is confirmed as it is.
    const address = email();
    const admin = client({ key: "service_role" }).supabase.auth.admin;
    const { data: created } = await admin.createUser({ email: address, password: "set-by-admin-1" });
    const { data, error } = await client().supabase.auth.signUp({
      email: address,
      password: "chosen-at-signup",
    });
    assert.equal(error, null);
    assert.equal(data.user?.id, created.user?.id);
    assert.ok(data.session && data.user?.email_confirmed_at);
    assert.equal(await userCount(sql, address), 1);
    const signIn = await client().supabase.auth.signInWithPassword({
      email: address,
      password: "set-by-admin-1",
    });
    assert.equal(signIn.error, null, "the password is still the admin's");
  });
});

Deno.test("a body that is not JSON, or a field of the wrong type, is 400 bad_json", async () => {
  const broken = await authFetch("/signup", {
    method: "POST",
    rawBody: "{not json",
    headers: { "content-type": "application/json", "x-supabase-api-version": "2024-01-01" },
  });
  assert.equal(broken.status, 400);
  assert.equal(broken.body?.code, "bad_json");
  const wrongType = await authFetch("/signup", {
    method: "POST",
    body: { email: 42, password: "long-enough-1" },
    headers: { "x-supabase-api-version": "2024-01-01" },
  });
  assert.equal(wrongType.status, 400);
  assert.equal(wrongType.body?.code, "bad_json");
});

Deno.test("errors use the shape of the API version asked for: 2024-01-01 { code, message }, else { code, error_code, msg }", async () => {
  const body = { email: testEmail(), password: "1" };
  const versioned = await authFetch("/signup", {
    method: "POST",
    body,
    headers: { "x-supabase-api-version": "2024-01-01" },
  });
  assert.equal(versioned.status, 422);
  assert.equal(versioned.headers.get("x-supabase-api-version"), "2024-01-01");
  assert.equal(versioned.headers.get("x-sb-error-code"), "weak_password");
  assert.deepEqual(versioned.body, {
    code: "weak_password",
    message: "Password should be at least 6 characters.",
    weak_password: { reasons: ["length"] },
  });

  const initial = await authFetch("/signup", { method: "POST", body });
  assert.equal(initial.status, 422);
  assert.equal(initial.headers.get("x-supabase-api-version"), null);
  assert.deepEqual(initial.body, {
    code: 422,
    error_code: "weak_password",
    msg: "Password should be at least 6 characters.",
    weak_password: { reasons: ["length"] },
  });
});

Deno.test("GET /health answers as Auth does, GET /settings shows email sign-ups on and autoconfirm on", async () => {
  const health = await authFetch("/health");
  assert.equal(health.status, 200);
  assert.equal(health.body?.name, "GoTrue");
  // Browsers may read the headers auth-js and listUsers rely on.
  assert.equal(
    health.headers.get("access-control-expose-headers"),
    "X-Total-Count, Link, X-Supabase-Api-Version",
  );
  const settings = await authFetch("/settings");
  assert.equal(settings.status, 200);
  assert.deepEqual(settings.body?.external, { anonymous_users: false, email: true, phone: false });
  assert.equal(settings.body?.disable_signup, false);
  assert.equal(settings.body?.mailer_autoconfirm, true);
  const unknown = await authFetch("/no-such-endpoint");
  assert.equal(unknown.status, 404);
  const wrongMethod = await authFetch("/signup", { method: "DELETE" });
  assert.equal(wrongMethod.status, 405);
});
