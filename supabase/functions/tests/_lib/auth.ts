// Helpers for the Auth stand-in's conformance tests (auth-*_test.ts): supabase-js clients that each connect from
// their own loopback address (127.x.y.z, so each is its own client IP for Auth's per-IP rate limits, as separate
// browsers would be), unique test emails, SQL cleanup, and extra Auth instances started with other settings
// (SUPABASE_AUTH_* overrides of config.toml) for the behaviours that depend on them.
import {
  AuthClient,
  createClient,
  type Session,
  type SupabaseClient,
  type User,
} from "npm:@supabase/supabase-js@2.119.0";
import type { Database } from "../../_shared/database.types.ts";
import { type Sql, testSql } from "./db.ts";
import { stack } from "./stack.ts";

export const AUTH_URL = `${stack.apiUrl}/auth/v1`;
const SERVER = new URL("../../../../scripts/stack/auth/server.ts", import.meta.url).pathname;

export const testEmail = (domain = "example.com") => `auth-test-${crypto.randomUUID()}@${domain}`;
export const testPassword = () => `pw-${crypto.randomUUID()}`;

/** A loopback address other than 127.0.0.1, fresh for each call. */
export function loopbackIp(): string {
  const [a, b, c] = crypto.getRandomValues(new Uint8Array(3));
  return `127.${1 + (a % 254)}.${b}.${1 + (c % 254)}`;
}

/** A fetch that connects from `ip`, with the client to close. */
export function fetchFrom(ip: string): { fetch: typeof fetch; close: () => void } {
  const client = Deno.createHttpClient({ localAddress: ip });
  return {
    fetch: (input, init) => fetch(input, { ...init, client }),
    close: () => client.close(),
  };
}

export type TestClient = Disposable & { supabase: SupabaseClient<Database>; ip: string; fetch: typeof fetch };

/** A supabase-js client as a browser (anon key) or a server (service_role key) configures it, from its own IP. */
export function testClient(
  options: { key?: "anon" | "service_role"; headers?: Record<string, string>; ip?: string } = {},
): TestClient {
  const ip = options.ip ?? loopbackIp();
  const connection = fetchFrom(ip);
  const key = options.key === "service_role" ? stack.serviceRoleKey : stack.anonKey;
  const supabase = createClient<Database>(stack.apiUrl, key, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    global: { fetch: connection.fetch, headers: options.headers ?? {} },
  });
  return { supabase, ip, fetch: connection.fetch, [Symbol.dispose]: connection.close };
}

export type SignedUp = { client: TestClient; email: string; password: string; session: Session; user: User };

/** What one test uses, all undone when it ends: clients closed, its users (by email) deleted. */
export type AuthScenario = {
  sql: Sql;
  /** A new test email (at example.com unless told), deleted with its user at the end. */
  email: (domain?: string) => string;
  client: (options?: Parameters<typeof testClient>[0]) => TestClient;
  /** A user signed up through supabase-js (the client holds the session). */
  signUp: (data?: Record<string, unknown>) => Promise<SignedUp>;
};

export async function authScenario(fn: (s: AuthScenario) => Promise<void>): Promise<void> {
  const sql = testSql(2);
  const emails: string[] = [];
  const clients: TestClient[] = [];
  const scenario: AuthScenario = {
    sql,
    email: (domain) => {
      const email = testEmail(domain);
      emails.push(email);
      return email;
    },
    client: (options) => {
      const client = testClient(options);
      clients.push(client);
      return client;
    },
    signUp: async (data) => {
      const client = scenario.client();
      const email = scenario.email();
      const password = testPassword();
      const { data: answer, error } = await client.supabase.auth.signUp({
        email,
        password,
        options: { data },
      });
      if (error || !answer.session || !answer.user) throw new Error(`sign-up failed: ${error?.message}`);
      return { client, email, password, session: answer.session, user: answer.user };
    },
  };
  try {
    await fn(scenario);
  } finally {
    for (const client of clients) client[Symbol.dispose]();
    await deleteUsersByEmail(sql, emails);
    await sql.end();
  }
}

/** Deletes the test users with these emails (and, by cascade, everything of theirs). */
export async function deleteUsersByEmail(sql: Sql, emails: string[]): Promise<void> {
  if (emails.length) {
    await sql`delete from auth.users where lower(email) = any(${emails.map((e) => e.toLowerCase())})`;
  }
}

/** The raw answer of an Auth endpoint through the gateway (for what supabase-js does not let us send). */
export async function authFetch(
  path: string,
  init: {
    method?: string;
    token?: string;
    body?: unknown;
    rawBody?: string;
    headers?: Record<string, string>;
  } = {},
): Promise<{ status: number; headers: Headers; body: Record<string, unknown> | null; text: string }> {
  const headers: Record<string, string> = { apikey: stack.anonKey, ...init.headers };
  if (init.token) headers.authorization = `Bearer ${init.token}`;
  let body: string | undefined = init.rawBody;
  if (init.body !== undefined) {
    body = JSON.stringify(init.body);
    headers["content-type"] = "application/json";
  }
  const connection = fetchFrom(loopbackIp());
  try {
    const res = await connection.fetch(`${AUTH_URL}${path}`, { method: init.method ?? "GET", headers, body });
    const text = await res.text();
    let parsed: Record<string, unknown> | null = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch { /* not JSON */ }
    return { status: res.status, headers: res.headers, body: parsed, text };
  } finally {
    connection.close();
  }
}

export type AuthInstance = AsyncDisposable & {
  url: string;
  /** An auth-js client of this instance, as if behind the gateway from `ip` (it sets X-Forwarded-For). */
  client: (options?: { ip?: string; key?: "anon" | "service_role" }) => InstanceType<typeof AuthClient>;
  /** Sends a signal to the instance's process. */
  signal: (signal: Deno.Signal) => void;
};

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** Starts another Auth stand-in on a free port with the given SUPABASE_AUTH_* overrides; stop it with `await using`. */
export async function startAuthInstance(overrides: Record<string, string>): Promise<AuthInstance> {
  const port = freePort();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--quiet", SERVER],
    env: { API_PORT: String(port), DB_URL: stack.dbUrl, KEYS_FILE: stack.keysFile, ...overrides },
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch { /* already gone */ }
    await child.status;
  };
  for (let i = 0;; i++) {
    try {
      const res = await fetch(`${url}/health`);
      await res.body?.cancel();
      if (res.ok) break;
    } catch (e) {
      if (i > 200) {
        await stop();
        throw new Error(`the Auth instance did not start: ${e}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    url,
    client: ({ ip = loopbackIp(), key = "anon" } = {}) => {
      const apiKey = key === "service_role" ? stack.serviceRoleKey : stack.anonKey;
      return new AuthClient({
        url,
        // As supabase-js sets them (a user's own token replaces Authorization on user calls).
        headers: { apikey: apiKey, Authorization: `Bearer ${apiKey}`, "X-Forwarded-For": ip },
        persistSession: false,
        autoRefreshToken: false,
        detectSessionInUrl: false,
      });
    },
    signal: (signal) => child.kill(signal),
    [Symbol.asyncDispose]: stop,
  };
}
