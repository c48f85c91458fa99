// The local stack's Supabase Auth (GoTrue) stand-in: the subset of its HTTP API that supabase-js uses (sign-up,
// password sign-in, refresh, user, sign-out, admin users), on 127.0.0.1:API_PORT behind the gateway's /auth/v1.
// Its state is Auth's own tables in the auth schema (scripts/stack/auth/schema.sql), reached as
// supabase_auth_admin; its settings are supabase/config.toml's [auth] (config.ts); user tokens are signed by
// keys-file.ts. Env: API_PORT, DB_URL (superuser URL; the role's own is derived from it), KEYS_FILE, and optional
// SUPABASE_AUTH_* overrides of config.toml. SIGHUP (db:reset) re-reads config.toml and reconnects.
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { projectJwt, readKeys } from "../keys-file.ts";
import { loadAuthConfig } from "./config.ts";
import type { AuthService, Log } from "./context.ts";
import { connect } from "./db.ts";
import { RateLimiter } from "./rate-limit.ts";
import { router } from "./router.ts";

const CONFIG_FILE = join(fileURLToPath(new URL("../../..", import.meta.url)), "supabase", "config.toml");

const required = (name: string) => {
  const value = Deno.env.get(name);
  if (!value) throw new Error(`${name} is required`);
  return value;
};

const log: Log = (level, msg, extra = {}) =>
  console.log(JSON.stringify({ time: new Date().toISOString(), level, service: "auth", msg, ...extra }));

const port = Number(required("API_PORT"));
const dbUrl = required("DB_URL");
const jwt = projectJwt(await readKeys(required("KEYS_FILE")));

async function startService(): Promise<AuthService> {
  const config = await loadAuthConfig(CONFIG_FILE);
  if (config.enableAnonymousSignIns) {
    log("warn", "anonymous sign-ins are not supported by the local stand-in");
  }
  return {
    config,
    db: connect(dbUrl),
    signer: { config, jwt },
    limits: {
      signInSignUps: new RateLimiter(config.rateLimits.signInSignUps),
      tokenRefresh: new RateLimiter(config.rateLimits.tokenRefresh),
    },
    log,
  };
}

let service = await startService();
let current = router(service);

Deno.addSignalListener("SIGHUP", async () => {
  const previous = service;
  try {
    service = await startService();
    current = router(service);
    log("info", "SIGHUP: settings re-read, database reconnected");
    await previous.db.end({ timeout: 5 });
  } catch (e) {
    log("error", "SIGHUP: could not restart, keeping the previous settings", { error: String(e) });
  }
});

Deno.serve(
  {
    hostname: "127.0.0.1",
    port,
    onListen: () => log("info", "listening", { port, issuer: service.config.issuer }),
  },
  (req, info) => current(req, info),
);
