// The access tokens the Auth stand-in issues: Supabase Auth's claims, ES256 with the kid the gateway's JWKS
// publishes, and accepted where the platform checks them — the gateway's verify_jwt and the edge functions' own
// verifier (_shared/auth/verify.ts), reached through supabase.functions.invoke with the signed-in session.
import assert from "node:assert/strict";
import { FunctionsHttpError } from "npm:@supabase/supabase-js@2.119.0";
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from "npm:jose@6.2.18";
import { authScenario } from "./_lib/auth.ts";
import { stack } from "./_lib/stack.ts";

/** The API URL Auth's issuer is made of: config.toml's [api] port, whichever gateway the request came through. */
const ISSUER = "http://127.0.0.1:54321/auth/v1";

Deno.test("the access token carries Supabase Auth's claims for the user and its session", async () => {
  await authScenario(async ({ sql, signUp }) => {
    const { session, user, email } = await signUp({ full_name: "Hedy Lamarr" });
    const jwks = createRemoteJWKSet(new URL(stack.jwksUrl));
    const { payload, protectedHeader } = await jwtVerify(session.access_token, jwks, {
      issuer: ISSUER,
      audience: "authenticated",
      algorithms: ["ES256"],
    });
    const [sessionRow] = await sql`select id from auth.sessions where user_id = ${user.id}`;
    assert.equal(protectedHeader.typ, "JWT");
    assert.equal(payload.iss, ISSUER);
    assert.equal(payload.sub, user.id);
    assert.equal(payload.aud, "authenticated");
    assert.equal(payload.exp! - payload.iat!, 3600, "[auth] jwt_expiry");
    assert.equal(payload.email, email);
    assert.equal(payload.phone, "");
    assert.deepEqual(payload.app_metadata, { provider: "email", providers: ["email"] });
    assert.deepEqual(payload.user_metadata, { full_name: "Hedy Lamarr", email_verified: true });
    assert.equal(payload.role, "authenticated");
    assert.equal(payload.aal, "aal1");
    const amr = payload.amr as { method: string; timestamp: number }[];
    assert.equal(amr.length, 1);
    assert.equal(amr[0].method, "password");
    assert.ok(Math.abs(amr[0].timestamp - payload.iat!) <= 5);
    assert.equal(payload.session_id, sessionRow.id);
    assert.equal(payload.is_anonymous, false);
    assert.equal(session.expires_at, payload.exp);
  });
});

Deno.test("the token is signed ES256 with the kid of the key the gateway publishes at /auth/v1/.well-known/jwks.json", async () => {
  await authScenario(async ({ signUp }) => {
    const { session } = await signUp();
    const { keys } = await (await fetch(stack.jwksUrl)).json() as { keys: { kid: string; alg?: string }[] };
    const header = decodeProtectedHeader(session.access_token);
    assert.equal(header.alg, "ES256");
    assert.ok(keys.some((k) => k.kid === header.kid), `kid ${header.kid} is in the JWKS`);
  });
});

Deno.test("a signed-in session's token passes the gateway's verify_jwt: functions.invoke('health') is 200", async () => {
  await authScenario(async ({ signUp }) => {
    const { client } = await signUp();
    const { data, error } = await client.supabase.functions.invoke("health", { method: "GET" });
    assert.equal(error, null);
    assert.equal(data.status, "ok");
  });
});

Deno.test("the edge functions' own verifier accepts the token: buy-token-pack gets past auth to its 404", async () => {
  await authScenario(async ({ signUp, client }) => {
    const { client: signedIn } = await signUp();
    const { error } = await signedIn.supabase.functions.invoke("buy-token-pack", {
      body: { packId: "pack_none" },
    });
    assert.ok(error instanceof FunctionsHttpError, String(error));
    const answer = error.context as Response;
    assert.equal(answer.status, 404, "the user was authenticated; only the pack is unknown");
    assert.equal((await answer.json()).error.code, "not_found");

    // Without a session the same call is refused by the function's verifier (the anon key is not a user).
    const { error: anon } = await client().supabase.functions.invoke("buy-token-pack", {
      body: { packId: "pack_none" },
    });
    assert.ok(anon instanceof FunctionsHttpError, String(anon));
    const refused = anon.context as Response;
    assert.equal(refused.status, 401);
    await refused.body?.cancel();
  });
});
