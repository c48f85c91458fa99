// updateUser through supabase-js (PUT /user): user_metadata from `data`, a new password (which ends the user's
// other sessions), a new email (applied at once locally, synced to public.users by its trigger), and the
// refusals: the same or a weak password, a taken or malformed email, app_metadata (never the user's to change).
import assert from "node:assert/strict";
import { isAuthApiError, isAuthWeakPasswordError } from "npm:@supabase/supabase-js@2.119.0";
import { decodeJwt } from "npm:jose@6.2.18";
import { authFetch, authScenario } from "./_lib/auth.ts";

Deno.test("updateUser merges `data` into user_metadata (null removes a key) and the next token carries it", async () => {
  await authScenario(async ({ sql, signUp }) => {
    const { client, user } = await signUp({ full_name: "Ada", theme: "dark" });
    const { data, error } = await client.supabase.auth.updateUser({ data: { theme: null, locale: "en-GB" } });
    assert.equal(error, null);
    assert.deepEqual(data.user?.user_metadata, { full_name: "Ada", locale: "en-GB", email_verified: true });
    const [row] = await sql`select raw_user_meta_data from auth.users where id = ${user.id}`;
    assert.deepEqual(row.raw_user_meta_data, { full_name: "Ada", locale: "en-GB", email_verified: true });

    const { data: refreshed } = await client.supabase.auth.refreshSession();
    const claims = decodeJwt(refreshed.session!.access_token);
    assert.equal((claims.user_metadata as Record<string, unknown>).locale, "en-GB");
  });
});

Deno.test("updateUser with a new password: the old one stops working and the user's other sessions end", async () => {
  await authScenario(async ({ signUp, client }) => {
    const { client: phone, email, password } = await signUp();
    const laptop = client();
    const { data: laptopSignIn } = await laptop.supabase.auth.signInWithPassword({ email, password });

    const { error } = await phone.supabase.auth.updateUser({ password: "a-brand-new-password" });
    assert.equal(error, null);

    const old = await client().supabase.auth.signInWithPassword({ email, password });
    assert.equal(old.error?.code, "invalid_credentials");
    const fresh = await client().supabase.auth.signInWithPassword({
      email,
      password: "a-brand-new-password",
    });
    assert.equal(fresh.error, null);
    assert.equal((await phone.supabase.auth.getUser()).error, null, "the session that changed it goes on");
    const other = await client().supabase.auth.refreshSession({
      refresh_token: laptopSignIn.session!.refresh_token,
    });
    assert.equal(other.error?.code, "refresh_token_not_found", "the other session was signed out");
  });
});

Deno.test("updateUser with the current password is 422 same_password; a weak one is 422 weak_password", async () => {
  await authScenario(async ({ signUp }) => {
    const { client, password } = await signUp();
    const same = await client.supabase.auth.updateUser({ password });
    assert.ok(isAuthApiError(same.error), String(same.error));
    assert.equal(same.error.status, 422);
    assert.equal(same.error.code, "same_password");
    const weak = await client.supabase.auth.updateUser({ password: "123" });
    assert.ok(isAuthWeakPasswordError(weak.error), String(weak.error));
    assert.deepEqual(weak.error.reasons, ["length"]);
  });
});

Deno.test("updateUser with a new email changes it at once, in auth.users, the identity and public.users", async () => {
  await authScenario(async ({ sql, signUp, client, email }) => {
    const { client: device, user, password } = await signUp();
    const next = email();
    const { data, error } = await device.supabase.auth.updateUser({ email: next.toUpperCase() });
    assert.equal(error, null);
    assert.equal(data.user?.email, next);
    const [row] = await sql`
      select u.email, i.email as identity_email, p.email as product_email
        from auth.users u join auth.identities i on i.user_id = u.id join public.users p on p.id = u.id
       where u.id = ${user.id}`;
    assert.deepEqual({ ...row }, { email: next, identity_email: next, product_email: next });
    assert.equal((await client().supabase.auth.signInWithPassword({ email: next, password })).error, null);
  });
});

Deno.test("updateUser to an email another user has is 422 email_exists; a malformed one is 400 validation_failed", async () => {
  await authScenario(async ({ signUp }) => {
    const { email: taken } = await signUp();
    const { client, email } = await signUp();
    const clash = await client.supabase.auth.updateUser({ email: taken });
    assert.ok(isAuthApiError(clash.error), String(clash.error));
    assert.equal(clash.error.status, 422);
    assert.equal(clash.error.code, "email_exists");
    const malformed = await client.supabase.auth.updateUser({ email: "no-at-sign" });
    assert.equal(malformed.error?.code, "validation_failed");
    assert.equal((await client.supabase.auth.getUser()).data.user?.email, email, "unchanged");
  });
});

Deno.test("PUT /user with app_metadata is 403 not_admin and changes nothing", async () => {
  await authScenario(async ({ sql, signUp }) => {
    const { user, session } = await signUp();
    const res = await authFetch("/user", {
      method: "PUT",
      token: session.access_token,
      body: { app_metadata: { plan: "max" }, data: { sneaky: true } },
      headers: { "x-supabase-api-version": "2024-01-01" },
    });
    assert.equal(res.status, 403);
    assert.deepEqual(res.body, {
      code: "not_admin",
      message: "Updating app_metadata requires admin privileges",
    });
    const [row] =
      await sql`select raw_app_meta_data, raw_user_meta_data from auth.users where id = ${user.id}`;
    assert.deepEqual(row.raw_app_meta_data, { provider: "email", providers: ["email"] });
    assert.equal(row.raw_user_meta_data.sneaky, undefined);
  });
});
