// _shared/auth/ in-process against the stack's database and keys: which tokens make a user (HS256 with
// the JWT secret, ES256 via the JWKS inline or by URL) and which are a 401 (anon/service_role keys,
// expired, not yet valid, forged, unsigned, unknown user, missing or malformed header).
import assert from "node:assert/strict";
import postgres from "npm:postgres@3.4.9";
import { SignJWT } from "npm:jose@6.2.18";
import { caller } from "../_shared/auth/caller.ts";
import { API_KEY_TOKEN_HEADERS, bearerOrApiKey } from "../_shared/auth/token.ts";
import { authenticate, type AuthOptions, type AuthUser } from "../_shared/auth/user.ts";
import { HttpError } from "../_shared/http/errors.ts";
import { json } from "../_shared/http/respond.ts";
import { withHttp } from "../_shared/http/with-http.ts";
import { stack } from "./_lib/stack.ts";
import { es256, hs256, unsigned, userClaims } from "./_lib/tokens.ts";

type Sql = postgres.Sql;

const jwks = await (await fetch(stack.jwksUrl)).text();

const ENV_NAMES = ["SUPABASE_DB_URL", "JWT_SECRET", "SUPABASE_JWKS", "SUPABASE_JWKS_URL", "SUPABASE_URL"];

/** Sets (or, with undefined, removes) env vars; returns a function that restores them. */
function setEnv(values: Record<string, string | undefined>): () => void {
  const before = Object.fromEntries(ENV_NAMES.map((name) => [name, Deno.env.get(name)]));
  for (const name of ENV_NAMES) {
    const value = values[name];
    if (value === undefined) Deno.env.delete(name);
    else Deno.env.set(name, value);
  }
  return () => {
    for (const [name, value] of Object.entries(before)) {
      if (value === undefined) Deno.env.delete(name);
      else Deno.env.set(name, value);
    }
  };
}

const STACK_ENV = { SUPABASE_DB_URL: stack.dbUrl, JWT_SECRET: stack.jwtSecret, SUPABASE_JWKS: jwks };

type Scenario = {
  sql: Sql;
  userId: string;
  email: string;
  auth: (req: Request, o?: AuthOptions) => Promise<AuthUser>;
};

/** A user in auth.users (so public.users has it), the stack's env, and a DB client; all undone after. */
async function withUser(
  fn: (s: Scenario) => Promise<void>,
  env: Record<string, string | undefined> = STACK_ENV,
): Promise<void> {
  const sql = postgres(stack.dbUrl, { max: 1, prepare: false, onnotice: () => {} });
  const userId = crypto.randomUUID();
  const email = `auth-test-${userId}@example.com`;
  const restore = setEnv(env);
  try {
    await sql`insert into auth.users (id, email, aud, role) values (${userId}, ${email}, 'authenticated', 'authenticated')`;
    await fn({ sql, userId, email, auth: (req, o = {}) => authenticate(req, { sql, ...o }) });
  } finally {
    restore();
    await sql`delete from auth.users where id = ${userId}`;
    await sql.end();
  }
}

const bearer = (token: string) =>
  new Request("http://x/fn", { method: "POST", headers: { authorization: `Bearer ${token}` } });

async function assertUnauthorized(promise: Promise<unknown>, message?: RegExp): Promise<void> {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(e instanceof HttpError, `expected HttpError, got ${e}`);
    assert.equal(e.status, 401);
    assert.equal(e.code, "unauthorized");
    assert.equal(e.headers["www-authenticate"], "Bearer");
    if (message) assert.match(e.message, message);
    return true;
  });
}

Deno.test("a valid HS256 user token yields the user from public.users with its claims", async () => {
  await withUser(async ({ userId, email, auth }) => {
    const { claims, ...user } = await auth(bearer(await hs256(userClaims(userId, email))));
    assert.deepEqual(user, { id: userId, email, plan: "free" });
    assert.equal(claims.sub, userId);
    assert.equal(claims.role, "authenticated");
    assert.equal(claims.email, email);
  });
});

Deno.test("a valid ES256 user token is verified against SUPABASE_JWKS", async () => {
  await withUser(async ({ userId, auth }) => {
    const user = await auth(bearer(await es256(userClaims(userId))));
    assert.equal(user.id, userId);
  }, { ...STACK_ENV, JWT_SECRET: undefined });
});

Deno.test("a valid ES256 user token is verified against the JWKS fetched from SUPABASE_JWKS_URL", async () => {
  await withUser(async ({ userId, auth }) => {
    const user = await auth(bearer(await es256(userClaims(userId))));
    assert.equal(user.id, userId);
  }, { SUPABASE_DB_URL: stack.dbUrl, SUPABASE_JWKS_URL: stack.jwksUrl });
});

Deno.test("the anon key is refused with 401", async () => {
  await withUser(async ({ auth }) => {
    await assertUnauthorized(auth(bearer(stack.anonKey)), /not a user token/);
  });
});

Deno.test("the service_role key, and a service_role token with a user's sub, are refused with 401", async () => {
  await withUser(async ({ userId, auth }) => {
    await assertUnauthorized(auth(bearer(stack.serviceRoleKey)), /not a user token/);
    await assertUnauthorized(
      auth(bearer(await hs256({ ...userClaims(userId), role: "service_role" }))),
      /not a user token/,
    );
  });
});

Deno.test("an expired user token is refused with 401", async () => {
  await withUser(async ({ userId, auth }) => {
    await assertUnauthorized(auth(bearer(await hs256(userClaims(userId), stack.jwtSecret, -60))), /expired/);
    await assertUnauthorized(auth(bearer(await es256(userClaims(userId), -60))), /expired/);
  });
});

Deno.test("a user token that is not yet valid (nbf) or has no exp is refused with 401", async () => {
  await withUser(async ({ userId, auth }) => {
    const key = new TextEncoder().encode(stack.jwtSecret);
    const notYet = await new SignJWT(userClaims(userId)).setProtectedHeader({ alg: "HS256" })
      .setExpirationTime("2h").setNotBefore("1h").sign(key);
    await assertUnauthorized(auth(bearer(notYet)), /not yet valid/);
    const noExp = await new SignJWT(userClaims(userId)).setProtectedHeader({ alg: "HS256" }).sign(key);
    await assertUnauthorized(auth(bearer(noExp)), /Invalid token/);
  });
});

Deno.test("a token with a wrong signature is refused with 401 (HS256 and ES256)", async () => {
  await withUser(async ({ userId, auth }) => {
    const forged = await hs256(userClaims(userId), "not-the-project-secret-but-long-enough-to-sign-it");
    await assertUnauthorized(auth(bearer(forged)), /Invalid token/);
    const [h, p, s] = (await es256(userClaims(userId))).split(".");
    const flipped = `${h}.${p}.${s.startsWith("A") ? "B" : "A"}${s.slice(1)}`;
    await assertUnauthorized(auth(bearer(flipped)), /Invalid token/);
    // A valid ES256 token whose payload was swapped for another user's.
    const other = (await es256(userClaims(crypto.randomUUID()))).split(".")[1];
    await assertUnauthorized(auth(bearer(`${h}.${other}.${s}`)), /Invalid token/);
  });
});

Deno.test("an unsigned token (alg none) is refused with 401", async () => {
  await withUser(async ({ userId, auth }) => {
    await assertUnauthorized(auth(bearer(unsigned(userClaims(userId)))), /not accepted/);
  });
});

Deno.test("an HS256 token is refused when the project has no JWT secret (JWKS only)", async () => {
  await withUser(async ({ userId, auth }) => {
    await assertUnauthorized(auth(bearer(await hs256(userClaims(userId)))), /not accepted/);
  }, { ...STACK_ENV, JWT_SECRET: undefined });
});

Deno.test("a valid token for a sub that is not in public.users is refused with 401", async () => {
  await withUser(async ({ auth }) => {
    await assertUnauthorized(auth(bearer(await hs256(userClaims(crypto.randomUUID())))), /User not found/);
  });
});

Deno.test("a missing token, a non-Bearer Authorization header and a non-UUID sub are 401", async () => {
  await withUser(async ({ auth }) => {
    await assertUnauthorized(auth(new Request("http://x/fn")), /Missing token/);
    const basic = new Request("http://x/fn", { headers: { authorization: "Basic dXNlcjpwYXNz" } });
    await assertUnauthorized(auth(basic), /Bearer/);
    await assertUnauthorized(auth(bearer("not.a.jwt")), /Invalid token/);
    await assertUnauthorized(auth(bearer(await hs256(userClaims("user-42")))), /not a user token/);
  });
});

Deno.test("the token is read from x-api-key when the caller chooses it, and only then", async () => {
  await withUser(async ({ userId, auth }) => {
    const token = await hs256(userClaims(userId));
    const req = () => new Request("http://x/fn", { headers: { "x-api-key": token } });
    const user = await auth(req(), { headers: API_KEY_TOKEN_HEADERS });
    assert.equal(user.id, userId);
    await assertUnauthorized(auth(req()), /Missing token: send it in the authorization header/);
    // The first listed header that is present wins: a user token in x-api-key beats the anon key.
    const both = new Request("http://x/fn", {
      headers: { "x-api-key": token, authorization: `Bearer ${stack.anonKey}` },
    });
    assert.equal(bearerOrApiKey(both, ["x-api-key", "authorization"]), token);
    const goog = new Request("http://x/fn", { headers: { "x-goog-api-key": token } });
    assert.equal(bearerOrApiKey(goog, API_KEY_TOKEN_HEADERS), token);
  });
});

Deno.test("caller hands the handler the user and answers 401 in the JSON error shape", async () => {
  await withUser(async ({ sql, userId }) => {
    const handler = withHttp({ name: "auth-test", methods: ["GET"] }, async (req, ctx) => {
      const { user } = await caller(req, ctx, { sql });
      return json({ id: user.id, plan: user.plan });
    });
    const ok = await handler(
      new Request("http://x/fn", { headers: { authorization: `Bearer ${await hs256(userClaims(userId))}` } }),
    );
    assert.equal(ok.status, 200);
    assert.deepEqual(await ok.json(), { id: userId, plan: "free" });

    const denied = await handler(
      new Request("http://x/fn", { headers: { authorization: `Bearer ${stack.anonKey}` } }),
    );
    assert.equal(denied.status, 401);
    assert.equal(denied.headers.get("www-authenticate"), "Bearer");
    assert.deepEqual(await denied.json(), {
      error: { code: "unauthorized", message: "Token is not a user token" },
    });
  });
});

Deno.test({
  name: "caller without a client looks the user up through the shared db() (SUPABASE_DB_URL)",
  // db() is a process-wide pool that stays open by design.
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await withUser(async ({ userId }) => {
      const handler = withHttp({ name: "auth-test", methods: ["GET"] }, async (req, ctx) => {
        const { user } = await caller(req, ctx);
        return json({ id: user.id });
      });
      const res = await handler(
        new Request("http://x/fn", {
          headers: { authorization: `Bearer ${await es256(userClaims(userId))}` },
        }),
      );
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), { id: userId });
    });
  },
});

Deno.test("an unreachable JWKS or database is a 503 (the server's fault), not a 401", async () => {
  await withUser(async ({ userId, auth }) => {
    await assert.rejects(auth(bearer(await es256(userClaims(userId)))), (e: unknown) => {
      assert.ok(e instanceof HttpError);
      assert.deepEqual([e.status, e.message], [503, "Authentication is temporarily unavailable"]);
      return true;
    });
    const deadDb = postgres("postgresql://postgres:postgres@127.0.0.1:1/postgres", { connect_timeout: 1 });
    try {
      const req = bearer(await hs256(userClaims(userId)));
      await assert.rejects(
        auth(req, { sql: deadDb }),
        (e: unknown) => e instanceof HttpError && e.status === 503,
      );
    } finally {
      await deadDb.end();
    }
  }, { ...STACK_ENV, SUPABASE_JWKS: undefined, SUPABASE_JWKS_URL: "http://127.0.0.1:1/jwks.json" });
});
