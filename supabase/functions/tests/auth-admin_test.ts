// The admin API through supabase-js's auth.admin with the service_role key: createUser, listUsers (Auth's
// pagination), getUserById, updateUserById (the only way to app_metadata), deleteUser (hard: the product's rows
// go by cascade; soft: the row stays, erased). Any other caller gets 403 not_admin.
import assert from "node:assert/strict";
import { isAuthApiError } from "npm:@supabase/supabase-js@2.119.0";
import { decodeJwt } from "npm:jose@6.2.18";
import { parseGoDuration } from "../../../scripts/stack/auth/duration.ts";
import { authFetch, authScenario } from "./_lib/auth.ts";
import type { Sql } from "./_lib/db.ts";
import { stack } from "./_lib/stack.ts";

const V2024 = { "x-supabase-api-version": "2024-01-01" };

/** How many rows the user has in each table its deletion must empty. */
async function rowsOf(sql: Sql, userId: string): Promise<Record<string, number>> {
  const [row] = await sql<Record<string, number>[]>`
    select (select count(*)::int from auth.users where id = ${userId}) as auth_users,
           (select count(*)::int from auth.identities where user_id = ${userId}) as identities,
           (select count(*)::int from auth.sessions where user_id = ${userId}) as sessions,
           (select count(*)::int from auth.refresh_tokens where user_id = ${userId}::text) as refresh_tokens,
           (select count(*)::int from public.users where id = ${userId}) as users,
           (select count(*)::int from public.user_profiles where user_id = ${userId}) as user_profiles,
           (select count(*)::int from public.user_settings where user_id = ${userId}) as user_settings,
           (select count(*)::int from public.token_balances where user_id = ${userId}) as token_balances,
           (select count(*)::int from public.token_transactions where user_id = ${userId}) as token_transactions`;
  return { ...row };
}

Deno.test("every admin method called without the service_role key is 403 not_admin", async () => {
  await authScenario(async ({ signUp, client }) => {
    const { user, session, email, password } = await signUp();
    const admin = client().supabase.auth.admin; // the anon key as the bearer
    const calls = [
      admin.listUsers(),
      admin.getUserById(user.id),
      admin.createUser({ email: "someone@example.com", password: "long-enough-1" }),
      admin.updateUserById(user.id, { app_metadata: { plan: "max" } }),
      admin.deleteUser(user.id),
    ];
    for (const { error } of await Promise.all(calls)) {
      assert.ok(isAuthApiError(error), String(error));
      assert.equal(error.status, 403);
      assert.equal(error.code, "not_admin");
    }
    // A user's own token as the bearer is refused too.
    const raw = await authFetch(`/admin/users/${user.id}`, {
      method: "DELETE",
      token: session.access_token,
      headers: V2024,
    });
    assert.equal(raw.status, 403);
    assert.equal(raw.body?.code, "not_admin");
    const stillThere = await client().supabase.auth.signInWithPassword({ email, password });
    assert.equal(stillThere.error, null);
    assert.deepEqual(stillThere.data.user?.app_metadata, { provider: "email", providers: ["email"] });
  });
});

Deno.test("createUser makes a confirmed user with metadata who can sign in, with the product's rows", async () => {
  await authScenario(async ({ sql, client, email }) => {
    const admin = client({ key: "service_role" }).supabase.auth.admin;
    const address = email();
    const { data, error } = await admin.createUser({
      email: address,
      password: "long-enough-1",
      email_confirm: true,
      user_metadata: { full_name: "Katherine Johnson" },
      app_metadata: { plan_hint: "pro" },
    });
    assert.equal(error, null);
    const user = data.user!;
    assert.equal(user.email, address);
    assert.ok(user.email_confirmed_at);
    assert.deepEqual(user.user_metadata, { full_name: "Katherine Johnson", email_verified: true });
    assert.deepEqual(user.app_metadata, { provider: "email", providers: ["email"], plan_hint: "pro" });
    assert.equal(user.identities?.[0].provider, "email");
    assert.equal(user.last_sign_in_at, undefined);

    const signIn = await client().supabase.auth.signInWithPassword({
      email: address,
      password: "long-enough-1",
    });
    assert.equal(signIn.error, null);
    assert.deepEqual(decodeJwt(signIn.data.session!.access_token).app_metadata, user.app_metadata);
    const rows = await rowsOf(sql, user.id);
    assert.equal(rows.users + rows.user_profiles + rows.user_settings + rows.token_balances, 4);
  });
});

Deno.test("createUser with a taken email is 422 email_exists; without an email it is 400 validation_failed", async () => {
  await authScenario(async ({ signUp, client }) => {
    const { email } = await signUp();
    const admin = client({ key: "service_role" }).supabase.auth.admin;
    const taken = await admin.createUser({ email, password: "long-enough-1" });
    assert.ok(isAuthApiError(taken.error), String(taken.error));
    assert.equal(taken.error.status, 422);
    assert.equal(taken.error.code, "email_exists");
    const none = await admin.createUser({ password: "long-enough-1" });
    assert.equal(none.error?.status, 400);
    assert.equal(none.error?.code, "validation_failed");
  });
});

Deno.test("createUser takes the id it is given; a malformed, nil or taken id and a phone user are refused", async () => {
  await authScenario(async ({ client, email }) => {
    const admin = client({ key: "service_role" }).supabase.auth.admin;
    const id = crypto.randomUUID();
    const made = await admin.createUser({ id, email: email(), password: "long-enough-1" });
    assert.equal(made.data.user?.id, id);
    const refusals = [
      { attributes: { id: "42", email: email() }, status: 400, code: "validation_failed" },
      {
        attributes: { id: "00000000-0000-0000-0000-000000000000", email: email() },
        status: 400,
        code: "validation_failed",
      },
      { attributes: { id, email: email() }, status: 422, code: "user_already_exists" },
      { attributes: { phone: "+15555550100" }, status: 400, code: "validation_failed" },
    ];
    for (const r of refusals) {
      const { error } = await admin.createUser({ password: "long-enough-1", ...r.attributes });
      assert.equal(error?.status, r.status, JSON.stringify(r.attributes));
      assert.equal(error?.code, r.code);
    }
  });
});

Deno.test("listUsers pages newest first with Auth's Link and X-Total-Count (seen through auth-js)", async () => {
  await authScenario(async ({ client, email }) => {
    // A private audience, so other tests' users do not change the counts.
    const aud = `auth-test-${crypto.randomUUID()}`;
    const admin = client({ key: "service_role", headers: { "X-JWT-AUD": aud } }).supabase.auth.admin;
    const made: string[] = [];
    for (let i = 0; i < 3; i++) {
      const { data, error } = await admin.createUser({ email: email(), password: "long-enough-1" });
      assert.equal(error, null);
      assert.equal(data.user?.aud, aud);
      made.push(data.user!.id);
    }
    const first = await admin.listUsers({ page: 1, perPage: 2 });
    if (first.error) throw first.error;
    assert.deepEqual(first.data.users.map((u) => u.id), [made[2], made[1]]);
    assert.equal(first.data.aud, aud);
    assert.equal(first.data.total, 3);
    assert.equal(first.data.nextPage, 2);
    assert.equal(first.data.lastPage, 2);
    const second = await admin.listUsers({ page: 2, perPage: 2 });
    if (second.error) throw second.error;
    assert.deepEqual(second.data.users.map((u) => u.id), [made[0]]);
    assert.equal(second.data.nextPage, null);

    const raw = await authFetch("/admin/users?page=1&per_page=2", {
      token: stack.serviceRoleKey,
      headers: { "x-jwt-aud": aud },
    });
    assert.equal(raw.headers.get("x-total-count"), "3");
    assert.equal(
      raw.headers.get("link"),
      '</admin/users?page=2&per_page=2>; rel="next", </admin/users?page=2&per_page=2>; rel="last"',
    );
    const filtered = await authFetch(
      `/admin/users?filter=${encodeURIComponent(first.data.users[0].email!)}`,
      {
        token: stack.serviceRoleKey,
        headers: { "x-jwt-aud": aud },
      },
    );
    assert.deepEqual(
      (filtered.body?.users as { id: string }[]).map((u) => u.id),
      [made[2]],
      "filter matches the email",
    );
    const bad = await authFetch("/admin/users?page=x", { token: stack.serviceRoleKey, headers: V2024 });
    assert.equal(bad.status, 400);
    assert.equal(bad.body?.code, "validation_failed");
  });
});

Deno.test("getUserById answers the user; an unknown id is 404 user_not_found", async () => {
  await authScenario(async ({ signUp, client }) => {
    const { user } = await signUp();
    const admin = client({ key: "service_role" }).supabase.auth.admin;
    const { data, error } = await admin.getUserById(user.id);
    assert.equal(error, null);
    assert.equal(data.user?.email, user.email);
    const missing = await admin.getUserById(crypto.randomUUID());
    assert.ok(isAuthApiError(missing.error), String(missing.error));
    assert.equal(missing.error.status, 404);
    assert.equal(missing.error.code, "user_not_found");
    const malformed = await authFetch("/admin/users/not-a-uuid", {
      token: stack.serviceRoleKey,
      headers: V2024,
    });
    assert.equal(malformed.status, 404);
    assert.equal(malformed.body?.code, "validation_failed");
  });
});

Deno.test("updateUserById sets app_metadata and user_metadata (merged; null removes) and they reach the token", async () => {
  await authScenario(async ({ signUp, client }) => {
    const { user, email, password } = await signUp({ full_name: "Mary" });
    const admin = client({ key: "service_role" }).supabase.auth.admin;
    const { data, error } = await admin.updateUserById(user.id, {
      app_metadata: { plan: "pro", provider: null },
      user_metadata: { full_name: "Mary Jackson" },
    });
    assert.equal(error, null);
    assert.deepEqual(data.user?.app_metadata, { providers: ["email"], plan: "pro" });
    assert.equal(data.user?.user_metadata.full_name, "Mary Jackson");
    const { data: signIn } = await client().supabase.auth.signInWithPassword({ email, password });
    assert.deepEqual(decodeJwt(signIn.session!.access_token).app_metadata, {
      providers: ["email"],
      plan: "pro",
    });
  });
});

Deno.test("updateUserById changes the email (identity and public.users follow) unless another user has it", async () => {
  await authScenario(async ({ sql, signUp, client, email }) => {
    const { user, password } = await signUp();
    const { email: taken } = await signUp();
    const admin = client({ key: "service_role" }).supabase.auth.admin;
    const next = email();
    const { data, error } = await admin.updateUserById(user.id, { email: next, email_confirm: true });
    assert.equal(error, null);
    assert.equal(data.user?.email, next);
    const [row] = await sql`
      select i.email as identity_email, i.identity_data ->> 'email_verified' as verified, p.email as product_email
        from auth.identities i join public.users p on p.id = i.user_id where i.user_id = ${user.id}`;
    assert.deepEqual({ ...row }, { identity_email: next, verified: "true", product_email: next });
    assert.equal((await client().supabase.auth.signInWithPassword({ email: next, password })).error, null);
    const clash = await admin.updateUserById(user.id, { email: taken });
    assert.equal(clash.error?.status, 422);
    assert.equal(clash.error?.code, "email_exists");
  });
});

Deno.test("updateUserById sets the role; a user in Auth's admin group (role admin) may change its own app_metadata", async () => {
  await authScenario(async ({ signUp, client }) => {
    const { user, email, password } = await signUp();
    const admin = client({ key: "service_role" }).supabase.auth.admin;
    assert.equal((await admin.updateUserById(user.id, { role: "admin" })).data.user?.role, "admin");
    const { data: signIn } = await client().supabase.auth.signInWithPassword({ email, password });
    assert.equal(decodeJwt(signIn.session!.access_token).role, "admin");
    const res = await authFetch("/user", {
      method: "PUT",
      token: signIn.session!.access_token,
      body: { app_metadata: { tier: "staff" } },
      headers: V2024,
    });
    assert.equal(res.status, 200);
    assert.equal((res.body?.app_metadata as Record<string, unknown>).tier, "staff");
  });
});

Deno.test("updateUserById with a new password signs the user out everywhere; a weak one is 422", async () => {
  await authScenario(async ({ signUp, client }) => {
    const { user, email, session } = await signUp();
    const admin = client({ key: "service_role" }).supabase.auth.admin;
    const weak = await admin.updateUserById(user.id, { password: "1" });
    assert.equal(weak.error?.code, "weak_password");
    assert.equal((await admin.updateUserById(user.id, { password: "set-by-the-admin" })).error, null);
    const old = await client().supabase.auth.refreshSession({ refresh_token: session.refresh_token });
    assert.equal(old.error?.code, "refresh_token_not_found");
    const signIn = await client().supabase.auth.signInWithPassword({ email, password: "set-by-the-admin" });
    assert.equal(signIn.error, null);
  });
});

Deno.test("deleteUser deletes the user and, by cascade, its sessions, identities and every product row", async () => {
  await authScenario(async ({ sql, signUp, client }) => {
    const { user, session } = await signUp();
    await sql`select private.update_user_token_balance(${user.id}::uuid, 500, 'adjustment', ${`auth-test:${user.id}`})`;
    const before = await rowsOf(sql, user.id);
    assert.ok(Object.values(before).every((n) => n > 0), JSON.stringify(before));

    const { error } = await client({ key: "service_role" }).supabase.auth.admin.deleteUser(user.id);
    assert.equal(error, null);
    const after = await rowsOf(sql, user.id);
    assert.ok(Object.values(after).every((n) => n === 0), JSON.stringify(after));
    const res = await authFetch("/user", { token: session.access_token, headers: V2024 });
    assert.equal(res.status, 403);
    assert.equal(res.body?.code, "user_not_found");
  });
});

Deno.test("deleteUser(id, true) soft-deletes: the row stays with deleted_at, erased, unable to sign in", async () => {
  await authScenario(async ({ sql, signUp, client }) => {
    const { user, email, password } = await signUp({ full_name: "Erase Me" });
    const { error } = await client({ key: "service_role" }).supabase.auth.admin.deleteUser(user.id, true);
    assert.equal(error, null);
    const [row] = await sql`
      select email, encrypted_password, deleted_at, raw_user_meta_data,
             (select count(*)::int from auth.sessions where user_id = u.id) as sessions,
             (select identity_data from auth.identities where user_id = u.id) as identity_data
        from auth.users u where id = ${user.id}`;
    assert.ok(row.deleted_at);
    assert.notEqual(row.email, email);
    assert.match(row.email, /^[A-Za-z0-9_-]{43}$/, "the email is replaced by its hash");
    assert.equal(row.encrypted_password, null);
    assert.deepEqual(row.raw_user_meta_data, {});
    assert.deepEqual(row.identity_data, {});
    assert.equal(row.sessions, 0);
    const signIn = await client().supabase.auth.signInWithPassword({ email, password });
    assert.equal(signIn.error?.code, "invalid_credentials");
    await sql`delete from auth.users where id = ${user.id}`;
  });
});

Deno.test("ban_duration is read as a Go duration (h, m, s, ms, fractions), as Auth reads it", () => {
  assert.equal(parseGoDuration("24h"), 86_400);
  assert.equal(parseGoDuration("1h30m"), 5_400);
  assert.equal(parseGoDuration("1.5h"), 5_400);
  assert.equal(parseGoDuration("90s"), 90);
  assert.equal(parseGoDuration("1500ms"), 1.5);
  assert.equal(parseGoDuration("0"), 0);
  for (const bad of ["", "1 day", "1d", "h", "12"]) assert.equal(parseGoDuration(bad), null, bad);
});
