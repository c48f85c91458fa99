// The local stand-in for the Supabase API gateway (Kong) + edge runtime, on API_PORT (54321):
//   GET  /auth/v1/.well-known/jwks.json   the stack's public signing keys (what hosted Auth publishes)
//   ANY  /rest/v1/...                     the Data API stand-in (scripts/stack/rest), behind an API key check
//   ANY  /auth/v1/...                     the Auth stand-in (scripts/stack/auth), behind an API key check
//   ANY  /functions/v1/<name>[/...]       runs supabase/functions/<name>/index.ts, one process per function
// As on the platform, a JWT signed by the project (HS256 with the JWT secret, or ES256 with the stack's
// signing key) is required before the function runs unless config.toml says `verify_jwt = false`;
// OPTIONS preflights pass through. Functions get the platform's env vars plus supabase/functions/.env.
// A change under supabase/functions/ or to config.toml restarts the functions on their next request.
import { parse as parseToml } from "npm:smol-toml@1.4.2";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { projectJwt, readKeys } from "./keys-file.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const FUNCTIONS_DIR = join(ROOT, "supabase", "functions");
const CONFIG_FILE = join(ROOT, "supabase", "config.toml");
// FUNCTIONS_ENV_FILE lets npm test run a second server with the committed test env.
const ENV_FILE = Deno.env.get("FUNCTIONS_ENV_FILE") ?? join(FUNCTIONS_DIR, ".env");
const WORKER = join(ROOT, "scripts", "stack", "function-worker.ts");

const env = (name: string) => {
  const v = Deno.env.get(name);
  if (!v) throw new Error(`${name} is required`);
  return v;
};
const port = Number(env("API_PORT"));
const dbUrl = env("DB_URL");
const keys = await readKeys(env("KEYS_FILE"));
// The Data API and Auth services behind /rest/v1 and /auth/v1 (start.sh's; servers started by tests and benchmarks
// for functions alone share the stack's).
const upstreams = {
  rest: Deno.env.get("REST_UPSTREAM_URL") ?? "http://127.0.0.1:54341",
  auth: Deno.env.get("AUTH_UPSTREAM_URL") ?? "http://127.0.0.1:54342",
};
const apiUrl = `http://127.0.0.1:${port}`;
// What the stack provides beyond the platform's own variables (lower priority than the env file):
// its Upstash endpoint, and the JWT secret for verifying legacy HS256 tokens (on a hosted project, set
// JWT_SECRET as a secret if your project still signs with it).
const localServices: Record<string, string> = {
  UPSTASH_REDIS_REST_URL: env("UPSTASH_URL"),
  UPSTASH_REDIS_REST_TOKEN: keys.upstash_token,
  JWT_SECRET: keys.jwt_secret,
};

// ---------------------------------------------------------------------------------------------- logs
function log(level: "info" | "warn" | "error", msg: string, extra: Record<string, unknown> = {}) {
  console.log(
    JSON.stringify({ time: new Date().toISOString(), level, service: "functions-server", msg, ...extra }),
  );
}

// ----------------------------------------------------------------------------------------------- JWT
const jwt = projectJwt(keys);
const jwks = jwt.jwks;

async function verifyPlatformJwt(authorization: string | null): Promise<string | null> {
  const token = authorization?.match(/^Bearer\s+(\S+)$/i)?.[1];
  if (!token) return "Missing authorization header";
  try {
    await jwt.verify(token);
    return null;
  } catch {
    return "Invalid JWT";
  }
}

// ------------------------------------------------------------------------------------------- config
type FunctionConfig = { verify_jwt?: boolean };
let functionConfig: Record<string, FunctionConfig> = {};
async function loadConfig() {
  try {
    const parsed = parseToml(await Deno.readTextFile(CONFIG_FILE)) as {
      functions?: Record<string, FunctionConfig>;
    };
    functionConfig = parsed.functions ?? {};
  } catch (e) {
    log("error", "cannot read supabase/config.toml", { error: String(e) });
  }
}
await loadConfig();
const verifyJwtFor = (name: string) => functionConfig[name]?.verify_jwt ?? true;

function parseDotenv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const m = line.match(/^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)\s*$/);
    if (!m) continue;
    let value = m[2];
    const quoted = value.match(/^(['"])(.*)\1$/);
    if (quoted) value = quoted[1] === '"' ? quoted[2].replace(/\\n/g, "\n") : quoted[2];
    else value = value.replace(/\s+#.*$/, "");
    out[m[1]] = value;
  }
  return out;
}

async function functionEnv(): Promise<Record<string, string>> {
  let secrets: Record<string, string> = {};
  try {
    secrets = parseDotenv(await Deno.readTextFile(ENV_FILE));
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const passThrough: Record<string, string> = {};
  for (const name of ["PATH", "HOME", "DENO_DIR", "DENO_NO_UPDATE_CHECK", "TZ", "LANG"]) {
    const v = Deno.env.get(name);
    if (v !== undefined) passThrough[name] = v;
  }
  return {
    ...passThrough,
    // The local stack's own services, unless supabase/functions/.env points elsewhere.
    ...localServices,
    ...secrets,
    // The platform's own variables win over .env, as on a hosted project.
    SUPABASE_URL: apiUrl,
    SUPABASE_ANON_KEY: keys.anon_key,
    SUPABASE_SERVICE_ROLE_KEY: keys.service_role_key,
    SUPABASE_DB_URL: dbUrl,
    SUPABASE_JWKS: JSON.stringify(jwks),
    SB_EXECUTION_ID: crypto.randomUUID(),
  };
}

// ------------------------------------------------------------------------------------------ workers
// A worker retired by a code change keeps serving its in-flight requests (streams included) and is
// stopped when the last one ends, or after RETIRE_GRACE_MS at the latest.
type Worker = { child: Deno.ChildProcess; port: Promise<number>; inflight: number; retired: boolean };
const RETIRE_GRACE_MS = 30_000;
const workers = new Map<string, Worker>();
const DENO = Deno.execPath();

async function pipeLines(stream: ReadableStream<Uint8Array>, onLine: (line: string) => void) {
  let buffered = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buffered += chunk;
    let i;
    while ((i = buffered.indexOf("\n")) >= 0) {
      onLine(buffered.slice(0, i));
      buffered = buffered.slice(i + 1);
    }
  }
  if (buffered) onLine(buffered);
}

async function startWorker(name: string): Promise<Worker> {
  const entry = join(FUNCTIONS_DIR, name, "index.ts");
  const child = new Deno.Command(DENO, {
    args: ["run", "--allow-all", "--quiet", "--no-prompt", WORKER, entry],
    cwd: join(FUNCTIONS_DIR, name),
    env: await functionEnv(),
    clearEnv: true,
    stdin: "null",
    // The function's log lines go straight to ours (one file, appended); stderr is read for the ready line.
    stdout: "inherit",
    stderr: "piped",
  }).spawn();
  let resolvePort!: (p: number) => void;
  let rejectPort!: (e: Error) => void;
  const portPromise = new Promise<number>((res, rej) => {
    resolvePort = res;
    rejectPort = rej;
  });
  const timer = setTimeout(() => rejectPort(new Error("boot timeout")), 60_000);
  pipeLines(child.stderr, (line) => {
    const ready = line.startsWith('{"worker_ready"') ? JSON.parse(line).worker_ready : undefined;
    if (typeof ready === "number") resolvePort(ready);
    else console.log(line);
  });
  const worker: Worker = { child, port: portPromise, inflight: 0, retired: false };
  child.status.then((status) => {
    clearTimeout(timer);
    rejectPort(new Error(`exited with code ${status.code}`));
    if (workers.get(name) === worker) workers.delete(name);
    log(status.success ? "info" : "warn", "function stopped", { function: name, code: status.code });
  });
  portPromise.then(() => clearTimeout(timer), () => {});
  log("info", "function starting", { function: name });
  return worker;
}

function kill(worker: Worker) {
  try {
    worker.child.kill("SIGTERM");
  } catch { /* already gone */ }
}

/** Takes a worker out of rotation; it stops once its in-flight requests are done. */
function retire(name: string) {
  const worker = workers.get(name);
  if (!worker) return;
  workers.delete(name);
  worker.retired = true;
  if (worker.inflight === 0) kill(worker);
  else setTimeout(() => kill(worker), RETIRE_GRACE_MS);
}

function requestDone(worker: Worker) {
  worker.inflight--;
  if (worker.retired && worker.inflight === 0) kill(worker);
}

function retireAll() {
  for (const name of [...workers.keys()]) retire(name);
}

async function functionExists(name: string) {
  try {
    return (await Deno.stat(join(FUNCTIONS_DIR, name, "index.ts"))).isFile;
  } catch {
    return false;
  }
}

// ----------------------------------------------------------------------------------------- watching
(async () => {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const changed = new Set<string>();
  const testsDir = join(FUNCTIONS_DIR, "tests") + "/";
  // The folder, not the file: an editor (or sed -i) that replaces config.toml gives it a new inode, and a watch
  // on the old one would never fire again.
  const watcher = Deno.watchFs(dirname(CONFIG_FILE), { recursive: true });
  for await (const event of watcher) {
    for (const p of event.paths) {
      if (p === CONFIG_FILE || (p.startsWith(FUNCTIONS_DIR + "/") && !p.startsWith(testsDir))) changed.add(p);
    }
    if (changed.size === 0) continue;
    clearTimeout(timer);
    timer = setTimeout(async () => {
      // A change inside one function's folder restarts that function; anything else (_shared, config,
      // .env) restarts them all.
      const names = new Set<string>();
      let all = false;
      for (const p of changed) {
        const rel = p.startsWith(FUNCTIONS_DIR + "/") ? p.slice(FUNCTIONS_DIR.length + 1) : "";
        const name = rel.split("/")[0];
        const isFunction = name && !name.startsWith("_") && !name.startsWith(".") &&
          (rel.includes("/") || !name.includes("."));
        if (isFunction) names.add(name);
        else all = true;
      }
      changed.clear();
      await loadConfig();
      if (all) retireAll();
      else names.forEach(retire);
      log("info", "functions changed: restarting on next request", { functions: all ? "all" : [...names] });
    }, 150);
  }
})();

// SIGHUP (sent by db:reset): restart the functions so they reconnect to the new database.
Deno.addSignalListener("SIGHUP", () => {
  retireAll();
  log("info", "SIGHUP: restarting functions on next request");
});
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  Deno.addSignalListener(signal, () => {
    for (const w of workers.values()) kill(w);
    Deno.exit(0);
  });
}

// ------------------------------------------------------------------------------------------- server
const json = (status: number, body: unknown, headers: HeadersInit = {}) =>
  new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });

/** Bodies of known length up to this size are passed on whole rather than piped as streams. */
const BUFFERED_BODY_MAX = 1024 * 1024;
const HOP_BY_HOP = ["connection", "keep-alive", "transfer-encoding", "upgrade", "host", "content-length"];

/** Workers being started: concurrent first requests to a function share one (never two, one orphaned). */
const starting = new Map<string, Promise<Worker>>();

async function workerFor(name: string): Promise<Worker> {
  const running = workers.get(name);
  if (running) return running;
  let start = starting.get(name);
  if (!start) {
    start = startWorker(name).then((worker) => {
      workers.set(name, worker);
      return worker;
    }).finally(() => starting.delete(name));
    starting.set(name, start);
  }
  return await start;
}

/** Forwards the request to the function's worker and streams the answer back. */
async function forward(
  req: Request,
  url: URL,
  name: string,
  rest: string,
  clientIp: string,
): Promise<Response> {
  const worker = await workerFor(name);
  let workerPort: number;
  try {
    workerPort = await worker.port;
  } catch (e) {
    log("error", "function failed to start", { function: name, error: String(e) });
    return json(503, { code: "BOOT_ERROR", message: "Function failed to start (please check logs)" });
  }

  const headers = new Headers(req.headers);
  for (const h of HOP_BY_HOP) headers.delete(h);
  headers.set("accept-encoding", "identity");
  headers.set("x-forwarded-for", clientIp);
  headers.set("x-forwarded-host", url.host);
  headers.set("x-forwarded-proto", "http");

  worker.inflight++;
  let handedOver = false;
  try {
    // A small body of known length is passed on whole (cheaper than piping a stream); others stream through.
    const length = Number(req.headers.get("content-length") ?? NaN);
    const requestBody = req.body && length <= BUFFERED_BODY_MAX ? await req.arrayBuffer() : req.body;
    const upstream = await fetch(`http://127.0.0.1:${workerPort}/${name}${rest}${url.search}`, {
      method: req.method,
      headers,
      body: requestBody,
      redirect: "manual",
      signal: req.signal,
    });
    const outHeaders = new Headers(upstream.headers);
    for (const h of ["connection", "keep-alive", "transfer-encoding"]) outHeaders.delete(h);
    if (upstream.body && Number(upstream.headers.get("content-length") ?? NaN) <= BUFFERED_BODY_MAX) {
      // An answer of known length (not a stream): read whole, so it is done here.
      const whole = await upstream.arrayBuffer();
      return new Response(whole, {
        status: upstream.status,
        statusText: upstream.statusText,
        headers: outHeaders,
      });
    }
    // The request counts as in flight until its body has been fully sent (or the client went away).
    const body = upstream.body?.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        flush: () => requestDone(worker),
        cancel: () => requestDone(worker),
      }),
    );
    handedOver = body !== undefined;
    return new Response(body ?? null, {
      status: upstream.status,
      statusText: upstream.statusText,
      headers: outHeaders,
    });
  } catch (e) {
    if (req.signal.aborted) return new Response(null, { status: 499 });
    log("error", "function request failed", { function: name, error: String(e) });
    return json(502, { code: "WORKER_ERROR", message: "Function exited before responding" });
  } finally {
    if (!handedOver) requestDone(worker);
  }
}

// ------------------------------------------------------------------------------- Data API and Auth
// As Kong does in front of PostgREST and Supabase Auth: CORS preflights are answered here; every other request
// needs a project API key (the `apikey` header, or `?apikey=`), else 401 with Kong's message. The request goes
// on with its Authorization header untouched (the services verify the token themselves) and the client's IP.
const API_KEYS = new Set([keys.anon_key, keys.service_role_key]);
const CORS = {
  "access-control-allow-origin": "*",
  "access-control-allow-methods": "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS",
  "access-control-expose-headers":
    "Content-Range, Content-Location, Content-Profile, Preference-Applied, Range-Unit, X-Total-Count",
  "access-control-max-age": "3600",
};
/** Auth endpoints a browser is sent to (links, redirects): open without an API key, as on the platform. */
const AUTH_OPEN = /^\/auth\/v1\/(verify|callback|authorize)(\/|$)/;

async function proxy(req: Request, url: URL, upstream: string, clientIp: string): Promise<Response> {
  if (req.method === "OPTIONS") {
    return new Response(null, {
      status: 200,
      headers: {
        ...CORS,
        "access-control-allow-headers": req.headers.get("access-control-request-headers") ?? "*",
      },
    });
  }
  if (!AUTH_OPEN.test(url.pathname)) {
    const apiKey = req.headers.get("apikey") ?? url.searchParams.get("apikey");
    if (!apiKey) return json(401, { message: "No API key found in request" }, CORS);
    if (!API_KEYS.has(apiKey)) return json(401, { message: "Invalid authentication credentials" }, CORS);
  }
  const headers = new Headers(req.headers);
  for (const h of HOP_BY_HOP) headers.delete(h);
  headers.set("x-forwarded-for", clientIp);
  headers.set("x-forwarded-host", url.host);
  headers.set("x-forwarded-proto", "http");
  try {
    const answer = await fetch(upstream + url.pathname.replace(/^\/(rest|auth)\/v1/, "") + url.search, {
      method: req.method,
      headers,
      body: req.body,
      redirect: "manual",
      signal: req.signal,
    });
    const outHeaders = new Headers(answer.headers);
    for (const h of ["connection", "keep-alive", "transfer-encoding"]) outHeaders.delete(h);
    for (const [k, v] of Object.entries(CORS)) if (!outHeaders.has(k)) outHeaders.set(k, v);
    return new Response(answer.body, {
      status: answer.status,
      statusText: answer.statusText,
      headers: outHeaders,
    });
  } catch (e) {
    if (req.signal.aborted) return new Response(null, { status: 499 });
    log("error", "upstream unreachable", { upstream, error: String(e) });
    return json(502, { message: "An invalid response was received from the upstream server" }, CORS);
  }
}

async function handle(req: Request, info: Deno.ServeHandlerInfo<Deno.NetAddr>): Promise<Response> {
  const url = new URL(req.url);
  if (url.pathname === "/auth/v1/.well-known/jwks.json") {
    return json(200, jwks, { "cache-control": "public, max-age=600", ...CORS });
  }
  if (url.pathname === "/rest/v1" || url.pathname.startsWith("/rest/v1/")) {
    return await proxy(req, url, upstreams.rest, info.remoteAddr.hostname);
  }
  if (url.pathname === "/auth/v1" || url.pathname.startsWith("/auth/v1/")) {
    return await proxy(req, url, upstreams.auth, info.remoteAddr.hostname);
  }
  const m = url.pathname.match(/^\/functions\/v1\/([A-Za-z0-9_-]+)(\/.*)?$/);
  if (!m) return json(404, { code: 404, message: "Not found" });
  const name = m[1];
  if (name.startsWith("_") || name === "tests" || !(workers.has(name) || await functionExists(name))) {
    return json(404, { code: "NOT_FOUND", message: "Requested function was not found" });
  }
  if (req.method !== "OPTIONS" && verifyJwtFor(name)) {
    const problem = await verifyPlatformJwt(req.headers.get("authorization"));
    if (problem) return json(401, { code: 401, message: problem });
  }
  return await forward(req, url, name, m[2] ?? "", info.remoteAddr.hostname);
}

Deno.serve({ hostname: "127.0.0.1", port, onListen: () => log("info", "listening", { port }) }, handle);
