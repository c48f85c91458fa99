// The Data API stand-in: what PostgREST is behind /rest/v1 on a hosted project, on 127.0.0.1:API_PORT (the
// gateway strips the /rest/v1 prefix and checks the API key). Requests run as `authenticator` with
// `set local role` from the verified JWT, one transaction each. The schema cache is built at start and rebuilt
// on NOTIFY pgrst, on SIGHUP (db:reset) and after the database comes back.
//   env: API_PORT, DB_URL (superuser URL; the authenticator's is derived from it), KEYS_FILE
import { projectJwt, readKeys } from "../keys-file.ts";
import { CacheLoader } from "./cache-loader.ts";
import { loadConfig } from "./config.ts";
import { Database } from "./db.ts";
import { createHandler } from "./handler.ts";
import { Listener } from "./listener.ts";
import { log } from "./log.ts";

// postgres.js can throw from a timer when a connection is cut mid-write (pg_terminate_backend, a database
// dropped by db:reset): that connection is gone, the pool makes a new one; the service must not die of it.
globalThis.addEventListener("error", (e) => {
  e.preventDefault();
  log("error", "uncaught error", { error: String(e.error?.stack ?? e.message) });
});
globalThis.addEventListener("unhandledrejection", (e) => {
  e.preventDefault();
  log("error", "unhandled rejection", { error: String((e.reason as Error)?.stack ?? e.reason) });
});

const config = await loadConfig();
const jwt = projectJwt(await readKeys(config.keysFile));
const db = new Database(config.authenticatorUrl, {
  poolSize: config.poolSize,
  acquisitionTimeoutMs: config.poolAcquisitionTimeoutMs,
});
const cache = new CacheLoader(() => db.sql, config);
// A listener that connects again after losing its connection means the database went away (restarted, or dropped and
// recreated): the pooled connections are dead too, so they are replaced along with the cache.
let listenerConnectedBefore = false;
const listener = new Listener(config.authenticatorUrl, {
  onReload: (reason) => {
    if (reason === "listener connected") {
      if (listenerConnectedBefore) db.recycle();
      listenerConnectedBefore = true;
    }
    void cache.reload(reason);
  },
});

const handler = createHandler({
  config,
  jwt,
  db,
  cache: () => cache.current,
  retryAfter: () => cache.retryAfterSeconds,
  onConnectionLost: () => listener.nudge(),
});

const server = Deno.serve(
  {
    hostname: "127.0.0.1",
    port: config.port,
    onListen: () => log("info", "listening", { port: config.port }),
  },
  handler,
);
listener.start(); // connecting loads the cache (and reloads it on every reconnection)

// SIGUSR1 rebuilds the schema cache, as PostgREST's SIGUSR1 does; SIGUSR2 reloads the config, whose in-database
// part (role settings) is in the cache too.
for (const signal of ["SIGUSR1", "SIGUSR2"] as const) {
  Deno.addSignalListener(signal, () => void cache.reload(signal));
}
// SIGHUP is sent by npm run db:reset, after the database was dropped and recreated: new connections too.
Deno.addSignalListener("SIGHUP", () => {
  db.recycle();
  void cache.reload("SIGHUP");
});
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  Deno.addSignalListener(signal, async () => {
    log("info", "shutting down", { signal });
    cache.stop();
    await Promise.allSettled([server.shutdown(), listener.stop(), db.end()]);
    Deno.exit(0);
  });
}
