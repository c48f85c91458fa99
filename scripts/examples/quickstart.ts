// The README's quick start, runnable: a front end's first minutes against `npm start`'s stack with supabase-js.
// Signs a new user up through Auth, reads their own rows and the public catalog through the Data API (under RLS),
// calls an RPC and an edge function with the user's token, and signs out.
//
//   node_modules/.bin/deno run --allow-all scripts/examples/quickstart.ts
//
// API_URL and ANON_KEY come from the environment (`npm run status -- -o env`), else from the running stack.
import { createClient } from "npm:@supabase/supabase-js@2.119.0";
import type { Database } from "../../supabase/functions/_shared/database.types.ts";

async function stackSetting(name: string): Promise<string> {
  const fromEnv = Deno.env.get(name);
  if (fromEnv) return fromEnv;
  const status = new URL("../stack/status.sh", import.meta.url).pathname;
  const out = await new Deno.Command("bash", { args: [status, "-o", "env"] }).output();
  const line = new TextDecoder().decode(out.stdout).split("\n").find((l) => l.startsWith(`${name}=`));
  if (!line) throw new Error(`${name} is not set and the stack is not running: run npm start`);
  return line.slice(name.length + 1);
}

const supabase = createClient<Database>(await stackSetting("API_URL"), await stackSetting("ANON_KEY"));

// 1. Sign up (email confirmation is off locally, so the answer carries a session).
const email = `quickstart-${crypto.randomUUID().slice(0, 8)}@example.com`;
const signUp = await supabase.auth.signUp({ email, password: "a long enough password" });
if (signUp.error) throw signUp.error;
console.log("signed up:", signUp.data.user?.id);

// 2. A table under RLS: the user sees their own account row, and only theirs.
const me = await supabase.from("users").select("id, email, plan").single();
if (me.error) throw me.error;
console.log("my account:", me.data);

// 3. A public table, with a filter and an order.
const plans = await supabase.from("subscription_plans").select("id, name").order("id");
if (plans.error) throw plans.error;
console.log("plans:", plans.data.map((p) => p.id).join(", "));

// 4. An RPC: the user's usage this month (empty for a new user).
const today = new Date().toISOString().slice(0, 10);
const usage = await supabase.rpc("get_usage_summary", { p_from: today.slice(0, 8) + "01", p_to: today });
if (usage.error) throw usage.error;
console.log("usage rows this month:", usage.data.length);

// 5. An edge function, called with the user's access token (the gateway verifies it first).
const health = await supabase.functions.invoke("health", { method: "GET" });
if (health.error) throw health.error;
console.log("health:", health.data.status);

// 6. Sign out: the session's refresh token stops working.
await supabase.auth.signOut();
console.log("signed out");
