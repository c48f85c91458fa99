// The project's asymmetric signing keys (ES256/RS256), from env: SUPABASE_JWKS (a JSON `{"keys":[…]}`), else
// SUPABASE_JWKS_URL, else `${SUPABASE_URL}/auth/v1/.well-known/jwks.json` (fetched and cached per process by
// jose). A key source that cannot be read or used is KeySourceUnavailable: the server's problem, a 503.
import { createLocalJWKSet, createRemoteJWKSet, errors, type JWTVerifyGetKey } from "npm:jose@6.2.18";
import { env } from "../platform/env.ts";

/** A key source (the JWKS) could not be read: the server's problem, answered with 503. */
export class KeySourceUnavailable extends Error {
  override name = "KeySourceUnavailable";
}

/** Errors from resolving a key, other than "no such key", mean the key source is down or broken. */
function guarded(getKey: JWTVerifyGetKey): JWTVerifyGetKey {
  return async (header, token) => {
    try {
      return await getKey(header, token);
    } catch (e) {
      if (e instanceof errors.JWKSNoMatchingKey || e instanceof errors.JWKSMultipleMatchingKeys) throw e;
      throw new KeySourceUnavailable("The project's JWKS could not be used", { cause: e });
    }
  };
}

let localJwks: { source: string; getKey: JWTVerifyGetKey } | undefined;
const remoteJwks = new Map<string, JWTVerifyGetKey>();

/** Whether any source of the project's keys is configured. */
export function jwksConfigured(): boolean {
  return ["SUPABASE_JWKS", "SUPABASE_JWKS_URL", "SUPABASE_URL"].some((name) =>
    env.string(name) !== undefined
  );
}

/** The project's asymmetric keys, from env; null when none is configured. Cached per process. */
export function projectJwks(): JWTVerifyGetKey | null {
  const inline = env.string("SUPABASE_JWKS");
  if (inline !== undefined) {
    if (localJwks?.source !== inline) {
      let getKey: JWTVerifyGetKey;
      try {
        getKey = createLocalJWKSet(JSON.parse(inline));
      } catch (e) {
        throw new KeySourceUnavailable("SUPABASE_JWKS is not a valid JWKS", { cause: e });
      }
      localJwks = { source: inline, getKey: guarded(getKey) };
    }
    return localJwks.getKey;
  }
  const base = env.string("SUPABASE_URL")?.replace(/\/+$/, "");
  const url = env.string("SUPABASE_JWKS_URL") ?? (base && `${base}/auth/v1/.well-known/jwks.json`);
  if (!url) return null;
  let getKey = remoteJwks.get(url);
  if (!getKey) {
    try {
      getKey = guarded(createRemoteJWKSet(new URL(url), { timeoutDuration: 3000 }));
    } catch (e) {
      throw new KeySourceUnavailable("The JWKS URL is not valid", { cause: e });
    }
    remoteJwks.set(url, getKey);
  }
  return getKey;
}
