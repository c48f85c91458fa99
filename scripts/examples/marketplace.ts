// The README's marketplace walkthrough, runnable: a newcomer's path through the marketplace against `npm start`'s
// stack with supabase-js — sign up, browse (the cached endpoint and the RPC: categories, a search, the next page),
// read an employee, hire it, rename and instruct the hire, an operator's new version and the upgrade, rate it and
// edit the rating, read the public reviews, deactivate, sign out.
//
//   node_modules/.bin/deno run --allow-all scripts/examples/marketplace.ts
//
// API_URL, ANON_KEY and SERVICE_ROLE_KEY (the operator's step) come from the environment (`npm run status -- -o
// env`), else from the running stack. EMPLOYEE picks the AI employee to hire (default research-summarizer). The
// operator's step makes a new version of that employee (a new prompt): it stays in its history.
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

type Card = { slug: string; name: string; role: string; current_version: number };
type Listing = {
  items: Card[];
  next_cursor: string | null;
  facets: { category: string; employees: number }[];
};

const apiUrl = await stackSetting("API_URL");
const supabase = createClient<Database>(apiUrl, await stackSetting("ANON_KEY"));
const slug = Deno.env.get("EMPLOYEE") ?? "research-summarizer";

// 1. Sign up (a display name for your reviews; email confirmation is off locally, so you are signed in at once).
const email = `marketplace-${crypto.randomUUID().slice(0, 8)}@example.com`;
const signUp = await supabase.auth.signUp({
  email,
  password: "a long enough password",
  options: { data: { full_name: "Ada Newcomer" } },
});
if (signUp.error) throw signUp.error;
console.log("signed up:", signUp.data.user?.id);

// 2. Browse. The cached endpoint (what a storefront calls; any key will do) ...
const cached = await supabase.functions.invoke("marketplace?sort=name&limit=3", { method: "GET" });
if (cached.error) throw cached.error;
console.log("first names:", (cached.data as Listing).items.map((c) => c.name).join(", "));
console.log(
  "categories:",
  (cached.data as Listing).facets.map((f) => `${f.category} (${f.employees})`).join(", "),
);

// ... or the RPC itself: a search, then the next page by keyset (next_cursor → p_after).
const search = await supabase.rpc("list_ai_employees", { p_query: "research", p_limit: 2 });
if (search.error) throw search.error;
const found = search.data as unknown as Listing;
console.log("search 'research':", found.items.map((c) => c.slug).join(", "));
if (found.next_cursor) {
  const next = await supabase.rpc("list_ai_employees", {
    p_query: "research",
    p_limit: 2,
    p_after: found.next_cursor,
  });
  if (next.error) throw next.error;
  console.log("next page:", (next.data as unknown as Listing).items.map((c) => c.slug).join(", "));
}

// 3. One employee: the detail (with its version history; never its system prompt).
const detail = await supabase.rpc("get_ai_employee", { p_slug: slug });
if (detail.error) throw detail.error;
const employee = detail.data as unknown as Card & { id: string; versions: unknown[] };
console.log(`employee: ${employee.name}, ${employee.role}, version ${employee.current_version}`);

// 4. Hire it: the plan's cap, the pin to the version in force and the analytics, in one call.
const hire = await supabase.rpc("hire_employee", { p_slug: slug });
if (hire.error) throw hire.error;
console.log("hired:", hire.data.id, "pinned to version", hire.data.pinned_version);

// 5. Your hires, under RLS: rename and instruct.
const renamed = await supabase.from("purchased_employees")
  .update({ nickname: "My researcher", custom_instructions: "Cite every source." })
  .eq("id", hire.data.id).select("nickname, ai_employees(name)").single();
if (renamed.error) throw renamed.error;
console.log("my hire:", renamed.data.nickname);

// 6. An operator publishes a new version (a new prompt; the service role, server side only) ...
const operator = createClient<Database>(apiUrl, await stackSetting("SERVICE_ROLE_KEY"), {
  auth: { persistSession: false },
});
const published = await operator.from("ai_employees")
  .update({
    system_prompt: `A sharper prompt (${new Date().toISOString()})`,
    change_note: "Sharper summaries",
  })
  .eq("slug", slug).select("current_version").single();
if (published.error) throw published.error;
console.log("operator published version", published.data.current_version);

// ... and the hire runs the pinned version until you upgrade it.
const upgrade = await supabase.rpc("upgrade_hired_employee", { p_hire_id: hire.data.id });
if (upgrade.error) throw upgrade.error;
console.log(`upgraded: ${upgrade.data.from_version} -> ${upgrade.data.to_version}`);

// 7. Rate it (hirers only; the version rated is recorded), then edit your rating.
const rating = {
  user_id: signUp.data.user!.id,
  employee_id: employee.id,
  stars: 4,
  review: "Clear summaries.",
};
// (employee_version is set by the database; the generated Insert type lists it, the client may not send it.)
const rated = await supabase.from("employee_ratings")
  .insert(rating as Database["public"]["Tables"]["employee_ratings"]["Insert"]);
if (rated.error) throw rated.error;
const edited = await supabase.from("employee_ratings").update({
  stars: 5,
  review: "Clear, sourced summaries.",
})
  .eq("employee_id", employee.id).select("stars, employee_version").single();
if (edited.error) throw edited.error;
console.log(`rated: ${edited.data.stars} stars on version ${edited.data.employee_version}`);

// 8. The public reviews: a display name, never a user id or email.
const reviews = await supabase.rpc("list_employee_reviews", { p_slug: slug, p_limit: 5 });
if (reviews.error) throw reviews.error;
const latest = (reviews.data as { items: { reviewer_name: string | null; stars: number }[] }).items[0];
console.log(`latest review: ${latest.stars} stars by ${latest.reviewer_name}`);

// 9. Let it go (reactivating it later keeps its pinned version), and sign out.
const off = await supabase.from("purchased_employees").update({ is_active: false }).eq("id", hire.data.id);
if (off.error) throw off.error;
console.log("deactivated");
await supabase.auth.signOut();
console.log("signed out");
