// The local stack's keys (written once by keys.ts to .stack/keys.json) and the one place that verifies and
// signs the project's JWTs: the API gateway, the Data API and Auth stand-ins all use it.
//   HS256 with the JWT secret: the anon and service_role keys (and tokens minted by tests);
//   ES256 with the stack's signing key (kid in the header, public half published as the JWKS): user tokens.
import {
  createLocalJWKSet,
  decodeProtectedHeader,
  type JWK,
  type JWTPayload,
  jwtVerify,
  SignJWT,
} from "npm:jose@6.2.18";

export type StackKeys = {
  jwt_secret: string;
  anon_key: string;
  service_role_key: string;
  upstash_token: string;
  signing_jwk: JWK & { kid: string };
};

export async function readKeys(file: string): Promise<StackKeys> {
  return JSON.parse(await Deno.readTextFile(file)) as StackKeys;
}

/** Verifies the project's JWTs; signs user tokens with the stack's ES256 key. */
export function projectJwt(keys: StackKeys) {
  const { d: _private, ...publicJwk } = keys.signing_jwk;
  const jwks = { keys: [publicJwk] };
  const localJwks = createLocalJWKSet(jwks);
  const hsSecret = new TextEncoder().encode(keys.jwt_secret);
  let signingKey: CryptoKey | undefined;
  return {
    /** The JWKS the stack publishes at /auth/v1/.well-known/jwks.json. */
    jwks,
    /** The verified claims, or throws (jose's errors: expired, bad signature, …). */
    async verify(token: string): Promise<JWTPayload> {
      const { alg } = decodeProtectedHeader(token);
      if (alg === "HS256") return (await jwtVerify(token, hsSecret, { algorithms: ["HS256"] })).payload;
      return (await jwtVerify(token, localJwks, { algorithms: ["ES256"] })).payload;
    },
    /** Signs claims as hosted Auth does with an asymmetric signing key (ES256, kid, typ JWT). */
    async sign(claims: JWTPayload): Promise<string> {
      signingKey ??= await crypto.subtle.importKey(
        "jwk",
        keys.signing_jwk as JsonWebKey,
        { name: "ECDSA", namedCurve: "P-256" },
        false,
        ["sign"],
      );
      return await new SignJWT(claims)
        .setProtectedHeader({ alg: "ES256", kid: keys.signing_jwk.kid, typ: "JWT" })
        .sign(signingKey);
    },
  };
}
export type ProjectJwt = ReturnType<typeof projectJwt>;
