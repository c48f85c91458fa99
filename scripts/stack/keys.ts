// Generates the local stack's secrets once: a JWT secret, the anon and service_role keys signed with
// it (HS256, as `supabase start` prints them), an ES256 key pair whose public half the stack
// publishes as its JWKS (what hosted projects use), and a token for the Upstash REST endpoint.
import { exportJWK, generateKeyPair, SignJWT } from "npm:jose@6.2.18";

const out = Deno.args[0];
if (!out) throw new Error("usage: keys.ts <keys.json>");

const random = (bytes: number) => {
  const b = crypto.getRandomValues(new Uint8Array(bytes));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
};

const jwtSecret = random(32);
const secretKey = new TextEncoder().encode(jwtSecret);
const iat = Math.floor(Date.now() / 1000);
const apiKey = (role: string) =>
  new SignJWT({ iss: "supabase", ref: "local", role })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuedAt(iat)
    .setExpirationTime(iat + 10 * 365 * 24 * 3600)
    .sign(secretKey);

const { privateKey } = await generateKeyPair("ES256", { extractable: true });
const kid = random(8);
const privateJwk = { ...(await exportJWK(privateKey)), kid, alg: "ES256", use: "sig" };

const keys = {
  jwt_secret: jwtSecret,
  anon_key: await apiKey("anon"),
  service_role_key: await apiKey("service_role"),
  signing_jwk: privateJwk,
  upstash_token: random(24),
};
await Deno.writeTextFile(out, JSON.stringify(keys, null, 2) + "\n", { mode: 0o600 });
