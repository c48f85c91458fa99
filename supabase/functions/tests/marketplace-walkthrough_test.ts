// The README's marketplace walkthrough (scripts/examples/marketplace.ts) runs as written against the stack: sign-up,
// browsing through the cached endpoint and the RPC, the detail, a hire, renaming it, an operator's new version and
// the upgrade, a rating and its edit, the public reviews, deactivating, sign-out. It hires a test employee of its
// own category (EMPLOYEE), so the seed's employees get no new version; everything is removed afterwards.
import assert from "node:assert/strict";
import { stack } from "./_lib/stack.ts";
import { testSql } from "./_lib/db.ts";

Deno.test("the README's marketplace walkthrough runs against the local stack from sign-up to an upgraded, rated hire", async () => {
  const sql = testSql(1);
  const category = `test-walk-${crypto.randomUUID().slice(0, 8)}`;
  const slug = `${category}-researcher`;
  let userId: string | undefined;
  await sql`insert into public.ai_employee_categories (slug, name) values (${category}, 'Walkthrough test')`;
  try {
    await sql`insert into public.ai_employees (slug, name, role, category, department, level, status, short_description,
                                               provider, model, system_prompt)
              values (${slug}, 'Walker', 'Research analyst', ${category}, 'Research', 'mid', 'available',
                      'A test employee', 'openai', 'gpt-4o-mini', 'SECRET walkthrough prompt')`;
    const script = new URL("../../../scripts/examples/marketplace.ts", import.meta.url).pathname;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", "--quiet", script],
      env: {
        API_URL: stack.apiUrl,
        ANON_KEY: stack.anonKey,
        SERVICE_ROLE_KEY: stack.serviceRoleKey,
        EMPLOYEE: slug,
        NO_COLOR: "1",
      },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    userId = stdout.match(/^signed up: ([0-9a-f-]{36})$/m)?.[1];
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr) + stdout);
    assert.ok(userId, stdout);
    assert.match(stdout, /^first names: .+, .+, .+$/m);
    assert.match(stdout, new RegExp(`^categories: .*${category} \\(1\\)`, "m"));
    assert.match(stdout, /^search 'research': \S+/m);
    assert.match(stdout, /^employee: Walker, Research analyst, version 1$/m);
    assert.match(stdout, /^hired: [0-9a-f-]{36} pinned to version 1$/m);
    assert.match(stdout, /^my hire: My researcher$/m);
    assert.match(stdout, /^operator published version 2$/m);
    assert.match(stdout, /^upgraded: 1 -> 2$/m);
    assert.match(stdout, /^rated: 5 stars on version 2$/m);
    assert.match(stdout, /^latest review: 5 stars by Ada Newcomer$/m);
    assert.match(stdout, /^deactivated$/m);
    assert.match(stdout, /^signed out$/m);
    assert.doesNotMatch(stdout, /SECRET|sharper prompt/i, "no prompt is ever printed");

    const [hire] = await sql`select nickname, pinned_version, is_active from public.purchased_employees
                              where user_id = ${userId}`;
    assert.deepEqual({ ...hire }, { nickname: "My researcher", pinned_version: 2, is_active: false });
    const [session] = await sql`select count(*)::int as live from auth.sessions where user_id = ${userId}`;
    assert.equal(session.live, 0, "sign-out ended the session");
  } finally {
    if (userId) await sql`delete from auth.users where id = ${userId}`;
    await sql`delete from public.ai_employees where category = ${category}`;
    await sql`delete from public.ai_employee_categories where slug = ${category}`;
    await sql.end();
  }
});
