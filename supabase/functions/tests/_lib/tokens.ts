// Mints tokens the way the platform does, for tests: HS256 with the stack's JWT secret (legacy/local
// projects) or ES256 with the stack's signing key, whose public half is at JWKS_URL (hosted projects).
import { importJWK, type JWK, SignJWT } from "npm:jose@6.2.18";
import { stack } from "./stack.ts";

type Claims = Record<string, unknown>;

const now = () => Math.floor(Date.now() / 1000);

export async function hs256(claims: Claims, secret = stack.jwtSecret, expiresIn = 3600): Promise<string> {
  return await new SignJWT(claims)
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuedAt()
    .setExpirationTime(now() + expiresIn)
    .sign(new TextEncoder().encode(secret));
}

export async function es256(claims: Claims, expiresIn = 3600): Promise<string> {
  const keys = JSON.parse(await Deno.readTextFile(stack.keysFile)) as { signing_jwk: JWK & { kid: string } };
  const key = await importJWK(keys.signing_jwk, "ES256");
  return await new SignJWT(claims)
    .setProtectedHeader({ alg: "ES256", typ: "JWT", kid: keys.signing_jwk.kid })
    .setIssuedAt()
    .setExpirationTime(now() + expiresIn)
    .sign(key);
}

/** An unsigned token (`alg: none`), which every verifier must refuse. */
export function unsigned(claims: Claims): string {
  const b64 = (o: unknown) =>
    btoa(JSON.stringify(o)).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
  return `${b64({ alg: "none", typ: "JWT" })}.${b64({ ...claims, exp: now() + 3600 })}.`;
}

/** Claims of a signed-in user, as Supabase Auth issues them. */
export function userClaims(sub: string, email = `${sub}@example.com`): Claims {
  return { sub, email, role: "authenticated", aud: "authenticated", iss: `${stack.apiUrl}/auth/v1` };
}
