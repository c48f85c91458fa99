// npm run user -- --email <address> [--password <pw>] [--plan <plan>] [--tokens <n>] [--json]
// A local user for trying the API with curl: created (confirmed) through the Auth admin API with the service_role
// key, or reused if the email exists (its password set when --password is given); optionally put on a plan
// (public.users.plan, one of public.subscription_plans) and credited tokens through the ledger's own function
// (private.update_user_token_balance: a ledger row, never a balance written directly); then a session is opened
// for it as the Auth stand-in opens one (amr "magiclink": signed in without a password, as through an admin-made
// link), and its access token printed with the user id.
// Bad arguments change nothing. Env (defaults: the local stack): API_URL, DB_URL, KEYS_FILE.
import { createClient } from "npm:@supabase/supabase-js@2.119.0";
import postgres from "npm:postgres@3.4.9";
import { parseArgs } from "node:util";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadAuthConfig } from "./auth/config.ts";
import { connect } from "./auth/db.ts";
import { issueSession } from "./auth/tokens.ts";
import { projectJwt, readKeys } from "./keys-file.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const USAGE =
  "usage: npm run user -- --email <address> [--password <pw>] [--plan <plan>] [--tokens <n>] [--json]";

const CLI_CLIENT = { ip: "127.0.0.1", userAgent: "npm run user" };

class UsageError extends Error {}

type Options = { email: string; password?: string; plan?: string; tokens?: bigint; json: boolean };

function options(args: string[]): Options {
  const { values } = parseArgs({
    args,
    options: {
      email: { type: "string" },
      password: { type: "string" },
      plan: { type: "string" },
      tokens: { type: "string" },
      json: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
    strict: true,
  });
  if (values.help) throw new UsageError(USAGE);
  if (!values.email) throw new UsageError(`--email is required\n${USAGE}`);
  if (values.tokens !== undefined && !/^[1-9]\d{0,17}$/.test(values.tokens)) {
    throw new UsageError("--tokens must be a positive whole number of tokens");
  }
  return {
    email: values.email,
    password: values.password,
    plan: values.plan,
    tokens: values.tokens === undefined ? undefined : BigInt(values.tokens),
    json: values.json,
  };
}

async function main(args: string[]): Promise<void> {
  const opts = options(args);
  const apiUrl = Deno.env.get("API_URL") ?? "http://127.0.0.1:54321";
  const dbUrl = Deno.env.get("DB_URL") ?? "postgresql://postgres:postgres@127.0.0.1:54322/postgres";
  const keys = await readKeys(Deno.env.get("KEYS_FILE") ?? join(ROOT, ".stack", "keys.json"));
  const sql = postgres(dbUrl, { max: 2, onnotice: () => {} });
  const authDb = connect(dbUrl, 2);
  try {
    if (opts.plan !== undefined) {
      const plans = (await sql<{ id: string }[]>`select id from public.subscription_plans order by id`).map((
        p,
      ) => p.id);
      if (!plans.includes(opts.plan)) throw new UsageError(`--plan must be one of: ${plans.join(", ")}`);
    }

    const admin = createClient(apiUrl, keys.service_role_key, {
      auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    }).auth.admin;
    const { userId, created } = await createOrReuse(admin, sql, opts);

    if (opts.plan !== undefined) await sql`update public.users set plan = ${opts.plan} where id = ${userId}`;
    if (opts.tokens !== undefined) {
      await sql`
        select private.update_user_token_balance(
          p_user_id => ${userId}::uuid, p_delta => ${opts.tokens.toString()}::bigint, p_reason => 'adjustment',
          p_reference => ${`local-cli:${crypto.randomUUID()}`}, p_metadata => '{"source": "npm run user"}'::jsonb)`;
    }
    const [account] = await sql<{ plan: string; balance: string }[]>`
      select u.plan, b.balance::text from public.users u join public.token_balances b on b.user_id = u.id
       where u.id = ${userId}`;

    const config = await loadAuthConfig(join(ROOT, "supabase", "config.toml"));
    const session = await authDb.begin((tx) =>
      issueSession(tx, { config, jwt: projectJwt(keys) }, userId, CLI_CLIENT, "magiclink")
    );
    const result = {
      user_id: userId,
      email: opts.email.toLowerCase(),
      created,
      plan: account.plan,
      token_balance: account.balance,
      access_token: session.access_token,
      refresh_token: session.refresh_token,
      expires_at: session.expires_at,
    };
    if (opts.json) console.log(JSON.stringify(result));
    else printText(result);
  } finally {
    await sql.end();
    await authDb.end();
  }
}

type Admin = ReturnType<typeof createClient>["auth"]["admin"];

async function createOrReuse(admin: Admin, sql: postgres.Sql, opts: Options) {
  const { data, error } = await admin.createUser({
    email: opts.email,
    password: opts.password,
    email_confirm: true,
  });
  if (!error) return { userId: data.user!.id, created: true };
  if (error.code !== "email_exists") throw new Error(`creating the user failed: ${error.message}`);

  const [existing] = await sql<
    { id: string }[]
  >`select id from auth.users where lower(email) = lower(${opts.email})`;
  if (opts.password !== undefined) {
    const updated = await admin.updateUserById(existing.id, { password: opts.password });
    if (updated.error) throw new Error(`setting the password failed: ${updated.error.message}`);
  }
  return { userId: existing.id, created: false };
}

function printText(r: Record<string, unknown>): void {
  console.log(`      user id: ${r.user_id} (${r.created ? "created" : "existing user"})
        email: ${r.email}
         plan: ${r.plan}
token balance: ${r.token_balance}
 access token: ${r.access_token}
   expires at: ${new Date(Number(r.expires_at) * 1000).toISOString()}
refresh token: ${r.refresh_token}

  curl "\${API_URL:-http://127.0.0.1:54321}/auth/v1/user" -H "apikey: $ANON_KEY" -H "Authorization: Bearer <access token>"`);
}

try {
  await main(Deno.args);
} catch (e) {
  const usage = e instanceof UsageError || (e as { code?: string }).code?.startsWith("ERR_PARSE_ARGS");
  console.error(usage ? (e as Error).message : `npm run user: ${(e as Error).message}`);
  Deno.exit(usage ? 2 : 1);
}
