// Per-IP rate limits of the Auth stand-in: sign-ups and password sign-ins together count against [auth.rate_limit]
// sign_in_sign_ups, refresh grants against token_refresh; over it is 429 over_request_rate_limit. The IP is the
// client's as the gateway reports it (X-Forwarded-For), so one client's flood leaves another alone. The limits
// can be overridden with SUPABASE_AUTH_RATE_LIMIT_* (shown on an instance of its own with small limits).
import assert from "node:assert/strict";
import { isAuthApiError } from "npm:@supabase/supabase-js@2.119.0";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadAuthConfig } from "../../../scripts/stack/auth/config.ts";
import { clientIp } from "../../../scripts/stack/auth/http.ts";
import { RateLimiter } from "../../../scripts/stack/auth/rate-limit.ts";
import { authScenario, loopbackIp, startAuthInstance, testPassword } from "./_lib/auth.ts";

const CONFIG_FILE = join(fileURLToPath(new URL("../../config.toml", import.meta.url)));

Deno.test("a bucket holds `limit` requests and refills at `limit` per 5 minutes, per IP", () => {
  let now = 0;
  const limiter = new RateLimiter(30, () => now);
  for (let i = 0; i < 30; i++) assert.equal(limiter.take("203.0.113.1"), true);
  assert.equal(limiter.take("203.0.113.1"), false);
  assert.equal(limiter.take("203.0.113.2"), true, "another IP has its own bucket");
  now += 10_000; // 10 s at 30 per 300 s: one request's worth
  assert.equal(limiter.take("203.0.113.1"), true);
  assert.equal(limiter.take("203.0.113.1"), false);
});

Deno.test("the client IP is the first X-Forwarded-For entry when it is an IP, else the peer's address", () => {
  const req = (xff?: string) =>
    new Request("http://auth/", { headers: xff ? { "x-forwarded-for": xff } : {} });
  assert.equal(clientIp(req("203.0.113.9, 10.0.0.1"), "127.0.0.1"), "203.0.113.9");
  assert.equal(clientIp(req("2001:db8::1"), "127.0.0.1"), "2001:db8::1");
  assert.equal(clientIp(req("not-an-ip"), "127.0.0.1"), "127.0.0.1");
  assert.equal(clientIp(req(), "::1"), "::1");
});

Deno.test("through the gateway, one IP gets config.toml's sign_in_sign_ups sign-ins and sign-ups, then 429", async () => {
  const { rateLimits } = await loadAuthConfig(CONFIG_FILE);
  await authScenario(async ({ client, email }) => {
    const flooder = client();
    for (let i = 0; i < rateLimits.signInSignUps; i++) {
      const { error } = await flooder.supabase.auth.signInWithPassword({ email: email(), password: "guess" });
      assert.equal(error?.code, "invalid_credentials", `attempt ${i + 1} is answered`);
    }
    const signUp = await flooder.supabase.auth.signUp({ email: email(), password: testPassword() });
    assert.ok(isAuthApiError(signUp.error), String(signUp.error));
    assert.equal(signUp.error.status, 429);
    assert.equal(signUp.error.code, "over_request_rate_limit");
    assert.equal(signUp.error.message, "Request rate limit reached");
    const signIn = await flooder.supabase.auth.signInWithPassword({ email: email(), password: "guess" });
    assert.equal(signIn.error?.code, "over_request_rate_limit");

    // Refreshes have a bucket of their own; and another client's IP is not limited.
    const refresh = await flooder.supabase.auth.refreshSession({ refresh_token: "abcdefghijkl" });
    assert.equal(refresh.error?.code, "refresh_token_not_found");
    const other = await client().supabase.auth.signInWithPassword({ email: email(), password: "guess" });
    assert.equal(other.error?.code, "invalid_credentials");
  });
});

Deno.test("SUPABASE_AUTH_RATE_LIMIT_SIGN_IN_SIGN_UPS=3 allows three sign-ups and sign-ins per IP, then 429", async () => {
  await using auth = await startAuthInstance({ SUPABASE_AUTH_RATE_LIMIT_SIGN_IN_SIGN_UPS: "3" });
  await authScenario(async ({ email }) => {
    const ip = loopbackIp();
    const first = { email: email(), password: testPassword() };
    assert.equal((await auth.client({ ip }).signUp(first)).error, null);
    assert.equal(
      (await auth.client({ ip }).signUp({ email: email(), password: testPassword() })).error,
      null,
    );
    assert.equal((await auth.client({ ip }).signInWithPassword(first)).error, null);

    const limited = await auth.client({ ip }).signInWithPassword(first);
    assert.ok(isAuthApiError(limited.error), String(limited.error));
    assert.equal(limited.error.status, 429);
    assert.equal(limited.error.code, "over_request_rate_limit");
    const blockedSignUp = await auth.client({ ip }).signUp({ email: email(), password: testPassword() });
    assert.equal(blockedSignUp.error?.code, "over_request_rate_limit");

    assert.equal(
      (await auth.client({ ip: loopbackIp() }).signInWithPassword(first)).error,
      null,
      "another IP",
    );
  });
});

Deno.test("SUPABASE_AUTH_RATE_LIMIT_TOKEN_REFRESH=2 allows two refreshes per IP, then 429", async () => {
  await using auth = await startAuthInstance({ SUPABASE_AUTH_RATE_LIMIT_TOKEN_REFRESH: "2" });
  await authScenario(async ({ email }) => {
    const ip = loopbackIp();
    const device = auth.client({ ip });
    assert.equal((await device.signUp({ email: email(), password: testPassword() })).error, null);
    assert.equal((await device.refreshSession()).error, null);
    assert.equal((await device.refreshSession()).error, null);
    const limited = await device.refreshSession();
    assert.equal(limited.error?.status, 429);
    assert.equal(limited.error?.code, "over_request_rate_limit");
  });
});
