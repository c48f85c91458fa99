// The chat's client paths with supabase-js through the local Data API and Auth, as a front end runs them: a user
// signed up through Auth hires an employee (hire_employee), starts sessions with the hire, writes user messages (the
// database titles the session and keeps its counters), lists their sessions (pinned first, newest first, archived
// apart), pages a thread both ways (list_chat_messages, and a plain select with a keyset cursor filter), renames,
// pins, archives and deletes sessions and messages, and searches their own messages (search_chat_messages). The
// refusals are asserted as the client sees them (HTTP status and code), and the rows are checked unchanged after
// them. What SQL alone proves about the same rules is in supabase/tests/database/chat/.
import assert from "node:assert/strict";
import type { Sql } from "./_lib/db.ts";
import { chatScenario, type Hirer, type Message, type Session, sessionRow } from "./_lib/chat.ts";
import { anonClient, type Client } from "./_lib/supabase.ts";

const PAGE = 50;

async function startSession(user: Hirer, title?: string): Promise<Session> {
  const { data, error } = await user.db.from("chat_sessions")
    .insert(sessionRow({ user_id: user.user.id, hire_id: user.hire.id, title })).select().single();
  assert.equal(error, null);
  return data!;
}

async function say(user: Hirer, session: Session, content: string, parentId?: string): Promise<Message> {
  const { data, error } = await user.db.from("chat_messages")
    .insert({ session_id: session.id, user_id: user.user.id, content, parent_id: parentId }).select()
    .single();
  assert.equal(error, null);
  return data!;
}

/** An assistant message as the agents service writes it, with the service key. */
async function answer(
  service: Client,
  session: Session,
  content: string,
  parentId?: string,
): Promise<Message> {
  const { data, error } = await service.from("chat_messages").insert({
    session_id: session.id,
    user_id: session.user_id,
    role: "assistant",
    content,
    parent_id: parentId,
    model: "gpt-4o-mini",
    provider: "openai",
    gateway_request_id: `chat-client-${crypto.randomUUID()}`,
  }).select().single();
  assert.equal(error, null);
  return data!;
}

const sessionOf = async (sql: Sql, id: string) =>
  (await sql`select title, is_pinned, is_archived, message_count, employee_id, user_id
               from public.chat_sessions where id = ${id}`)[0];
const messageIds = async (sql: Sql, sessionId: string) =>
  (await sql`select id from public.chat_messages where session_id = ${sessionId} order by created_at, id`)
    .map((r) => r.id as string);

/**
 * A thread of 120 user messages (one multi-row insert by the user) and 10 assistant messages written by the service
 * at the created_at of the 60th (ties, broken by id). Returns the ids oldest first, in (created_at, id) order.
 */
async function longThread(user: Hirer, service: Client, sql: Sql, session: Session): Promise<string[]> {
  const rows = Array.from({ length: 120 }, (_, i) => ({
    session_id: session.id,
    user_id: user.user.id,
    content: `message ${i + 1}`,
  }));
  const written = await user.db.from("chat_messages").insert(rows).select("id, created_at");
  assert.equal(written.error, null);
  assert.equal(written.data!.length, 120);
  const tieAt = written.data![59].created_at;
  const ties = Array.from({ length: 10 }, (_, i) => ({
    session_id: session.id,
    user_id: user.user.id,
    role: "assistant",
    content: `tie ${i + 1}`,
    created_at: tieAt,
  }));
  const tied = await service.from("chat_messages").insert(ties);
  assert.equal(tied.error, null);
  const ids = await messageIds(sql, session.id);
  assert.equal(ids.length, 130);
  // The time goes as text: postgres.js would send a timestamptz parameter through a JS Date (milliseconds).
  const [{ n }] = await sql`select count(*)::int as n from public.chat_messages
                             where session_id = ${session.id} and created_at = ${tieAt}::text::timestamptz`;
  assert.ok(n >= 11, "the thread has created_at ties");
  return ids;
}

Deno.test("a user hires, starts a session with the hire and writes messages: the first titles it, and message_count and last_message_at follow", async () => {
  await chatScenario(async ({ hirer }) => {
    const ann = await hirer();
    const session = await startSession(ann);
    assert.equal(session.user_id, ann.user.id);
    assert.equal(session.hire_id, ann.hire.id);
    assert.equal(session.employee_id, ann.hire.employee_id, "the database takes the employee from the hire");
    assert.deepEqual([session.title, session.message_count], [null, 0]);

    const first = await say(ann, session, "  Plan   my\n launch  ");
    assert.deepEqual([first.role, first.status, first.model], ["user", "complete", null]);
    const second = await say(ann, session, "And the budget?", first.id);
    const read = await ann.db.from("chat_sessions").select("title, message_count, last_message_at")
      .eq("id", session.id).single();
    assert.equal(read.error, null);
    assert.deepEqual(read.data, {
      title: "Plan my launch",
      message_count: 2,
      last_message_at: second.created_at,
    }, "titled from the first message (whitespace collapsed), counted, dated by the newest");

    const hire = await ann.db.from("purchased_employees").select("last_used_at").eq("id", ann.hire.id)
      .single();
    assert.equal(hire.data!.last_used_at, second.created_at, "a user message is a use of the hire");

    const titled = await startSession(ann, "My own title");
    await say(ann, titled, "Hello");
    const kept = await ann.db.from("chat_sessions").select("title, message_count").eq("id", titled.id)
      .single();
    assert.deepEqual(kept.data, { title: "My own title", message_count: 1 }, "a title the user gave is kept");
  });
});

Deno.test("a user lists their sessions pinned first, then newest message first, with archived ones apart; renames, pins and archives them", async () => {
  await chatScenario(async ({ hirer }) => {
    const ann = await hirer();
    const one = await startSession(ann, "One");
    const two = await startSession(ann, "Two");
    const three = await startSession(ann, "Three");
    for (const session of [one, three, two]) await say(ann, session, `Hello ${session.title}`);

    const list = (archived: boolean) =>
      ann.db.from("chat_sessions").select("id, title, is_pinned, message_count").eq("is_archived", archived)
        .order("is_pinned", { ascending: false }).order("last_message_at", { ascending: false })
        .order("id", { ascending: false });
    const newest = await list(false);
    assert.equal(newest.error, null);
    assert.deepEqual(newest.data!.map((s) => s.title), ["Two", "Three", "One"], "newest message first");

    const pinned = await ann.db.from("chat_sessions").update({ is_pinned: true }).eq("id", one.id)
      .select("is_pinned").single();
    assert.deepEqual(pinned.data, { is_pinned: true });
    const archived = await ann.db.from("chat_sessions").update({ is_archived: true }).eq("id", two.id)
      .select("is_archived").single();
    assert.deepEqual(archived.data, { is_archived: true });
    const renamed = await ann.db.from("chat_sessions").update({ title: "Three, renamed" }).eq("id", three.id)
      .select("title, updated_at").single();
    assert.equal(renamed.data!.title, "Three, renamed");
    assert.ok(renamed.data!.updated_at > three.updated_at, "updated_at moves");

    assert.deepEqual((await list(false)).data, [
      { id: one.id, title: "One", is_pinned: true, message_count: 1 },
      { id: three.id, title: "Three, renamed", is_pinned: false, message_count: 1 },
    ], "the pinned session first, the archived one gone");
    assert.deepEqual((await list(true)).data!.map((s) => s.id), [two.id], "the archive lists it");

    const tooLong = await ann.db.from("chat_sessions").update({ title: "x".repeat(201) }).eq("id", three.id);
    assert.deepEqual(
      [tooLong.status, tooLong.error?.code],
      [400, "23514"],
      "a title is at most 200 characters",
    );
    const unarchived = await ann.db.from("chat_sessions").update({ is_archived: false }).eq("id", two.id)
      .select("id");
    assert.deepEqual(unarchived.data, [{ id: two.id }]);
    assert.deepEqual((await list(false)).data!.map((s) => s.title), ["One", "Two", "Three, renamed"]);
  });
});

Deno.test("list_chat_messages pages a 130-message thread in keyset pages of 50 both ways: every message exactly once, in order, across created_at ties", async () => {
  await chatScenario(async ({ hirer, service, sql }) => {
    const ann = await hirer();
    const session = await startSession(ann);
    const oldestFirst = await longThread(ann, service, sql, session);

    // Scrolling back: the newest page, then p_before the last message of each page.
    const back: string[] = [];
    const backPages: number[] = [];
    const roles = new Set<string>();
    let before: string | undefined;
    for (;;) {
      const page = await ann.db.rpc("list_chat_messages", { p_session_id: session.id, p_before: before });
      assert.equal(page.error, null);
      backPages.push(page.data!.length);
      back.push(...page.data!.map((m) => m.id));
      for (const m of page.data!) roles.add(m.role);
      if (page.data!.length < PAGE) break;
      before = page.data!.at(-1)!.id;
    }
    assert.deepEqual(backPages, [50, 50, 30]);
    assert.deepEqual(back, [...oldestFirst].reverse(), "newest first, each message once");

    // Catching up: p_after the oldest, then the last message of each page, oldest first.
    const forward: string[] = [oldestFirst[0]];
    const forwardPages: number[] = [];
    let after = oldestFirst[0];
    for (;;) {
      const page = await ann.db.rpc("list_chat_messages", { p_session_id: session.id, p_after: after });
      assert.equal(page.error, null);
      forwardPages.push(page.data!.length);
      forward.push(...page.data!.map((m) => m.id));
      if (page.data!.length < PAGE) break;
      after = page.data!.at(-1)!.id;
    }
    assert.deepEqual(forwardPages, [50, 50, 29]);
    assert.deepEqual(forward, oldestFirst, "oldest first, each message once");

    const small = await ann.db.rpc("list_chat_messages", { p_session_id: session.id, p_limit: 7 });
    assert.deepEqual(small.data!.map((m) => m.id), back.slice(0, 7), "p_limit sets the page size");
    assert.deepEqual(
      [...roles].sort(),
      ["assistant", "user"],
      "the service's messages are in the owner's pages",
    );
  });
});

Deno.test("a plain select ordered by (created_at, id) with limit(50) and a keyset cursor filter pages the same thread both ways", async () => {
  await chatScenario(async ({ hirer, service, sql }) => {
    const ann = await hirer();
    const session = await startSession(ann);
    const oldestFirst = await longThread(ann, service, sql, session);

    type Cursor = { id: string; created_at: string };
    const page = (direction: "back" | "forward", cursor?: Cursor) => {
      const back = direction === "back";
      let query = ann.db.from("chat_messages").select("id, created_at, role").eq("session_id", session.id);
      if (cursor) {
        const op = back ? "lt" : "gt";
        query = query.or(
          `created_at.${op}."${cursor.created_at}",and(created_at.eq."${cursor.created_at}",id.${op}.${cursor.id})`,
        );
      }
      return query.order("created_at", { ascending: !back }).order("id", { ascending: !back }).limit(PAGE);
    };
    const walk = async (direction: "back" | "forward") => {
      const ids: string[] = [];
      const sizes: number[] = [];
      let cursor: Cursor | undefined;
      for (;;) {
        const { data, error } = await page(direction, cursor);
        assert.equal(error, null);
        sizes.push(data!.length);
        ids.push(...data!.map((m) => m.id));
        if (data!.length < PAGE) return { ids, sizes };
        cursor = data!.at(-1)!;
      }
    };

    const back = await walk("back");
    assert.deepEqual(back.sizes, [50, 50, 30]);
    assert.deepEqual(back.ids, [...oldestFirst].reverse(), "newest first, each message once");
    const forward = await walk("forward");
    assert.deepEqual(forward.sizes, [50, 50, 30]);
    assert.deepEqual(forward.ids, oldestFirst, "oldest first, each message once");

    // The RPC and the plain select agree page for page.
    const rpc = await ann.db.rpc("list_chat_messages", { p_session_id: session.id });
    assert.deepEqual(rpc.data!.map((m) => m.id), back.ids.slice(0, PAGE));
  });
});

Deno.test("deleting a message deletes the replies under it and counts down; deleting a session deletes its messages", async () => {
  await chatScenario(async ({ hirer, service, sql }) => {
    const ann = await hirer();
    const session = await startSession(ann);
    const question = await say(ann, session, "First question");
    const reply = await answer(service, session, "First answer", question.id);
    const followUp = await say(ann, session, "Follow-up", reply.id);
    const other = await say(ann, session, "Another root");
    assert.equal((await sessionOf(sql, session.id)).message_count, 4);

    const deleted = await ann.db.from("chat_messages").delete().eq("id", question.id).select("id");
    assert.equal(deleted.error, null);
    assert.deepEqual(deleted.data, [{ id: question.id }]);
    assert.deepEqual(
      await messageIds(sql, session.id),
      [other.id],
      "the reply and its follow-up went with it",
    );
    const after = await ann.db.from("chat_sessions").select("message_count, last_message_at").eq(
      "id",
      session.id,
    )
      .single();
    assert.deepEqual(after.data, { message_count: 1, last_message_at: other.created_at });
    assert.deepEqual(followUp.parent_id, reply.id);

    const gone = await ann.db.from("chat_sessions").delete().eq("id", session.id).select("id");
    assert.deepEqual(gone.data, [{ id: session.id }]);
    assert.equal(await sessionOf(sql, session.id), undefined);
    assert.deepEqual(await messageIds(sql, session.id), [], "its messages are gone");
    const empty = await ann.db.rpc("list_chat_messages", { p_session_id: session.id });
    assert.deepEqual(empty.data, []);
  });
});

Deno.test("search_chat_messages finds a user's own messages of every role, newest first, with a snippet; another user finds none of them", async () => {
  await chatScenario(async ({ hirer, service }) => {
    const ann = await hirer();
    const bob = await hirer();
    const word = `zq${crypto.randomUUID().slice(0, 8).replace(/\d/g, "x")}`;
    const s1 = await startSession(ann);
    const s2 = await startSession(ann);
    const m1 = await say(ann, s1, `Draft the quarterly budget for ${word}`);
    const m2 = await answer(service, s1, `Here is the ${word} budget draft`, m1.id);
    const m3 = await say(ann, s2, `${word} travel plans, not money`);
    await say(ann, s2, "Nothing to find here");
    const bobs = await say(bob, await startSession(bob), `Bob writes about ${word} too`);

    const hits = await ann.db.rpc("search_chat_messages", { p_query: word.toUpperCase() });
    assert.equal(hits.error, null);
    assert.deepEqual(hits.data!.map((h) => [h.message_id, h.role]), [
      [m3.id, "user"],
      [m2.id, "assistant"],
      [m1.id, "user"],
    ]);
    assert.equal(hits.data![2].snippet, `Draft the quarterly budget for <<${word}>>`);
    const phrase = await ann.db.rpc("search_chat_messages", { p_query: `"${word} budget"` });
    assert.deepEqual(phrase.data!.map((h) => h.message_id), [m2.id], "a quoted phrase");
    const excluded = await ann.db.rpc("search_chat_messages", { p_query: `${word} -budget` });
    assert.deepEqual(excluded.data!.map((h) => h.message_id), [m3.id], "a word excluded");
    const inSession = await ann.db.rpc("search_chat_messages", { p_query: word, p_session_id: s1.id });
    assert.deepEqual(inSession.data!.map((h) => h.session_id), [s1.id, s1.id], "kept to one session");
    const one = await ann.db.rpc("search_chat_messages", { p_query: word, p_limit: 1 });
    assert.deepEqual(one.data!.map((h) => h.message_id), [m3.id], "p_limit caps the hits");

    const theirs = await bob.db.rpc("search_chat_messages", { p_query: word });
    assert.deepEqual(theirs.data!.map((h) => h.message_id), [bobs.id], "B finds only B's own");
    const intoAnns = await bob.db.rpc("search_chat_messages", { p_query: word, p_session_id: s1.id });
    assert.deepEqual(intoAnns.data, [], "and nothing in A's session");
  });
});

Deno.test("a user cannot write an assistant or tool message, set the model or status of one, or update a message (403 42501)", async () => {
  await chatScenario(async ({ hirer, sql }) => {
    const ann = await hirer();
    const session = await startSession(ann);
    const mine = await say(ann, session, "Hello");
    const base = { session_id: session.id, user_id: ann.user.id, content: "I am the AI" };
    const refusals = {
      assistant: await ann.db.from("chat_messages").insert({ ...base, role: "assistant" }),
      tool: await ann.db.from("chat_messages").insert({
        ...base,
        role: "tool",
        parts: [{ type: "tool_result" }],
      }),
      model: await ann.db.from("chat_messages").insert({ ...base, model: "gpt-4o" }),
      status: await ann.db.from("chat_messages").insert({ ...base, status: "streaming" }),
      runId: await ann.db.from("chat_messages").insert({ ...base, run_id: crypto.randomUUID() }),
      update: await ann.db.from("chat_messages").update({ content: "edited" }).eq("id", mine.id),
      updateRole: await ann.db.from("chat_messages").update({ role: "assistant" }).eq("id", mine.id),
    };
    for (const [what, answer] of Object.entries(refusals)) {
      assert.deepEqual([answer.status, answer.error?.code], [403, "42501"], what);
      assert.match(answer.error!.message, /permission denied/, what);
    }
    const rows =
      await sql`select id, role, content from public.chat_messages where session_id = ${session.id}`;
    assert.deepEqual(
      rows.map((r) => ({ ...r })),
      [{ id: mine.id, role: "user", content: "Hello" }],
      "nothing written",
    );
    assert.equal((await sessionOf(sql, session.id)).message_count, 1);
  });
});

Deno.test("a user cannot write into another user's session, start one with another user's hire, or set a session's counters, employee or owner", async () => {
  await chatScenario(async ({ hirer, sql }) => {
    const ann = await hirer();
    const bob = await hirer();
    const annSession = await startSession(ann, "Ann's");
    const bobSession = await startSession(bob, "Bob's");
    const before = await sessionOf(sql, annSession.id);

    const intoBobs = await ann.db.from("chat_messages")
      .insert({ session_id: bobSession.id, user_id: ann.user.id, content: "in my name" });
    assert.deepEqual(
      [intoBobs.status, intoBobs.error?.code],
      [409, "23503"],
      "the composite foreign key refuses it",
    );
    assert.match(intoBobs.error!.message, /owner_is_the_sessions/);
    const asBob = await ann.db.from("chat_messages")
      .insert({ session_id: bobSession.id, user_id: bob.user.id, content: "in Bob's name" });
    assert.deepEqual([asBob.status, asBob.error?.code], [403, "42501"], "the policy refuses it");
    assert.match(asBob.error!.message, /row-level security/);

    const withBobsHire = await ann.db.from("chat_sessions")
      .insert(sessionRow({ user_id: ann.user.id, hire_id: bob.hire.id }));
    assert.deepEqual([withBobsHire.status, withBobsHire.error?.code], [409, "23503"]);
    assert.match(withBobsHire.error!.message, /hire_is_the_owners/);
    const inBobsName = await ann.db.from("chat_sessions")
      .insert(sessionRow({ user_id: bob.user.id, hire_id: bob.hire.id }));
    assert.deepEqual([inBobsName.status, inBobsName.error?.code], [403, "42501"]);
    const unknownHire = await ann.db.from("chat_sessions")
      .insert(sessionRow({ user_id: ann.user.id, hire_id: crypto.randomUUID() }));
    assert.deepEqual([unknownHire.status, unknownHire.error?.code], [409, "23503"]);
    const withCount = await ann.db.from("chat_sessions")
      .insert({ ...sessionRow({ user_id: ann.user.id, hire_id: ann.hire.id }), message_count: 5 });
    assert.deepEqual([withCount.status, withCount.error?.code], [403, "42501"], "no counters on insert");

    const changes = {
      message_count: { message_count: 99 },
      employee_id: { employee_id: crypto.randomUUID() },
      last_message_at: { last_message_at: "2030-01-01T00:00:00Z" },
      user_id: { user_id: bob.user.id },
      hire_id: { hire_id: bob.hire.id },
    };
    for (const [what, change] of Object.entries(changes)) {
      const res = await ann.db.from("chat_sessions").update(change).eq("id", annSession.id);
      assert.deepEqual([res.status, res.error?.code], [403, "42501"], what);
    }

    assert.deepEqual(await sessionOf(sql, annSession.id), before, "Ann's session is unchanged");
    assert.deepEqual(await messageIds(sql, bobSession.id), [], "nothing written into Bob's");
    const [{ n }] = await sql`select count(*)::int as n from public.chat_sessions
                               where user_id in (${ann.user.id}, ${bob.user.id})`;
    assert.equal(n, 2, "no session was started");
  });
});

Deno.test("user B reads, updates and deletes nothing of A's sessions and messages (0 rows), and anon reads and writes nothing (401)", async () => {
  await chatScenario(async ({ hirer, service, sql }) => {
    const ann = await hirer();
    const bob = await hirer();
    const session = await startSession(ann, "Private");
    const question = await say(ann, session, "Secret plans");
    await answer(service, session, "Secret answer", question.id);
    const before = await sessionOf(sql, session.id);
    const theirs = bob.db;

    assert.deepEqual((await theirs.from("chat_sessions").select("id").eq("id", session.id)).data, []);
    assert.deepEqual((await theirs.from("chat_sessions").select("id")).data, [], "B has no sessions");
    assert.deepEqual((await theirs.from("chat_messages").select("id").eq("session_id", session.id)).data, []);
    assert.deepEqual((await theirs.from("chat_messages").select("id").eq("id", question.id)).data, []);
    const page = await theirs.rpc("list_chat_messages", { p_session_id: session.id });
    assert.deepEqual([page.error, page.data], [null, []], "A's session reads as an empty page");
    const cursor = await theirs.rpc("list_chat_messages", {
      p_session_id: session.id,
      p_before: question.id,
    });
    assert.deepEqual(
      [cursor.status, cursor.error?.code],
      [404, "message_not_found"],
      "A's message is no cursor",
    );

    const renamed = await theirs.from("chat_sessions").update({ title: "Mine now", is_archived: true })
      .eq("id", session.id).select("id");
    assert.deepEqual([renamed.error, renamed.data], [null, []]);
    const deleted = await theirs.from("chat_sessions").delete().eq("id", session.id).select("id");
    assert.deepEqual([deleted.error, deleted.data], [null, []]);
    const deletedMessage = await theirs.from("chat_messages").delete().eq("id", question.id).select("id");
    assert.deepEqual([deletedMessage.error, deletedMessage.data], [null, []]);
    const deletedBySession = await theirs.from("chat_messages").delete().eq("session_id", session.id).select(
      "id",
    );
    assert.deepEqual(deletedBySession.data, []);

    const anon = anonClient();
    const anonAnswers = {
      sessions: await anon.from("chat_sessions").select("id"),
      messages: await anon.from("chat_messages").select("id").eq("session_id", session.id),
      list: await anon.rpc("list_chat_messages", { p_session_id: session.id }),
      search: await anon.rpc("search_chat_messages", { p_query: "secret" }),
      insertSession: await anon.from("chat_sessions")
        .insert(sessionRow({ user_id: ann.user.id, hire_id: ann.hire.id })),
      insertMessage: await anon.from("chat_messages")
        .insert({ session_id: session.id, user_id: ann.user.id, content: "anon" }),
      delete: await anon.from("chat_sessions").delete().eq("id", session.id),
    };
    for (const [what, res] of Object.entries(anonAnswers)) {
      assert.deepEqual([res.status, res.error?.code, res.data], [401, "42501", null], what);
    }

    assert.deepEqual(await sessionOf(sql, session.id), before, "A's session is unchanged");
    assert.equal((await messageIds(sql, session.id)).length, 2, "A's messages are all there");
  });
});

Deno.test("a bad cursor or limit is a 4xx with a code: list_chat_messages, search_chat_messages and a plain select's cursor filter", async () => {
  await chatScenario(async ({ hirer }) => {
    const ann = await hirer();
    const session = await startSession(ann);
    const other = await startSession(ann);
    const first = await say(ann, session, "first");
    const second = await say(ann, session, "second");
    const elsewhere = await say(ann, other, "elsewhere");
    const list = (args: { p_before?: string; p_after?: string; p_limit?: number }) =>
      ann.db.rpc("list_chat_messages", { p_session_id: session.id, ...args });

    const refused: [string, { status: number; error: { code: string } | null }, number, string][] = [
      ["a page over 50", await list({ p_limit: 51 }), 400, "invalid_limit"],
      ["a page of 0", await list({ p_limit: 0 }), 400, "invalid_limit"],
      ["both directions", await list({ p_before: second.id, p_after: first.id }), 400, "invalid_cursor"],
      ["a cursor that is not a uuid", await list({ p_before: "not-a-uuid" }), 400, "22P02"],
      ["a message of another session", await list({ p_after: elsewhere.id }), 404, "message_not_found"],
      ["an unknown message", await list({ p_before: crypto.randomUUID() }), 404, "message_not_found"],
      [
        "a session id that is not a uuid",
        await ann.db.rpc("list_chat_messages", { p_session_id: "42" }),
        400,
        "22P02",
      ],
      ["an empty search", await ann.db.rpc("search_chat_messages", { p_query: "   " }), 400, "invalid_query"],
      [
        "a search over 200 characters",
        await ann.db.rpc("search_chat_messages", { p_query: "a".repeat(201) }),
        400,
        "invalid_query",
      ],
      [
        "a search page of 51",
        await ann.db.rpc("search_chat_messages", { p_query: "first", p_limit: 51 }),
        400,
        "invalid_limit",
      ],
    ];
    for (const [what, res, status, code] of refused) {
      assert.deepEqual([res.status, res.error?.code], [status, code], what);
    }
    const hinted = await list({ p_limit: 51 });
    assert.ok(hinted.error!.hint, "invalid_limit says how to page");

    const plain = () => ann.db.from("chat_messages").select("id").eq("session_id", session.id);
    const badTime = await plain().lt("created_at", "not a time").limit(PAGE);
    assert.deepEqual(
      [badTime.status, badTime.error?.code],
      [400, "22007"],
      "a cursor time that does not parse",
    );
    const badId = await plain().or("created_at.lt.2026-12-01,and(created_at.eq.2026-12-01,id.lt.nope)").limit(
      PAGE,
    );
    assert.deepEqual([badId.status, badId.error?.code], [400, "22P02"], "a cursor id that does not parse");
    const badSyntax = await plain().or("created_at.before.2026-12-01,id.lt.x").limit(PAGE);
    assert.deepEqual(
      [badSyntax.status, badSyntax.error?.code],
      [400, "PGRST100"],
      "a filter that does not parse",
    );
    const negative = await plain().limit(-1);
    assert.deepEqual(
      [negative.status, negative.error?.code, negative.error?.details],
      [416, "PGRST103", "Limit should be greater than or equal to zero."],
      "a negative limit is PostgREST's range error",
    );
  });
});

Deno.test("assistant and tool messages written with the service key are visible to the session's owner only", async () => {
  await chatScenario(async ({ hirer, service, sql }) => {
    const ann = await hirer();
    const bob = await hirer();
    const session = await startSession(ann);
    const question = await say(ann, session, "What is 6 times 7?");
    const tool = await service.from("chat_messages").insert({
      session_id: session.id,
      user_id: ann.user.id,
      role: "tool",
      content: "42",
      parts: [{ type: "tool_result", tool: "calculator", output: { value: 42 } }],
      parent_id: question.id,
    }).select("id").single();
    assert.equal(tool.error, null);
    const reply = await answer(service, session, "It is 42.", tool.data!.id);

    const mine = await ann.db.from("chat_messages").select(
      "id, role, content, parts, model, provider, status",
    )
      .eq("session_id", session.id).order("created_at").order("id");
    assert.equal(mine.error, null);
    assert.deepEqual(mine.data, [
      {
        id: question.id,
        role: "user",
        content: "What is 6 times 7?",
        parts: null,
        model: null,
        provider: null,
        status: "complete",
      },
      {
        id: tool.data!.id,
        role: "tool",
        content: "42",
        parts: [{ type: "tool_result", tool: "calculator", output: { value: 42 } }],
        model: null,
        provider: null,
        status: "complete",
      },
      {
        id: reply.id,
        role: "assistant",
        content: "It is 42.",
        parts: null,
        model: "gpt-4o-mini",
        provider: "openai",
        status: "complete",
      },
    ]);
    const page = await ann.db.rpc("list_chat_messages", { p_session_id: session.id });
    assert.deepEqual(page.data!.map((m) => m.role), ["assistant", "tool", "user"]);
    const counted = await ann.db.from("chat_sessions").select("message_count, last_message_at").eq(
      "id",
      session.id,
    )
      .single();
    assert.deepEqual(counted.data, { message_count: 3, last_message_at: reply.created_at });

    const ids = [question.id, tool.data!.id, reply.id];
    assert.deepEqual((await bob.db.from("chat_messages").select("id").in("id", ids)).data, []);
    assert.deepEqual((await bob.db.from("chat_messages").select("id").eq("role", "assistant")).data, []);
    const anon = await anonClient().from("chat_messages").select("id").in("id", ids);
    assert.deepEqual([anon.status, anon.data], [401, null]);

    // Even the service cannot file a message under someone other than the session's owner.
    const misfiled = await service.from("chat_messages")
      .insert({ session_id: session.id, user_id: bob.user.id, role: "assistant", content: "misfiled" });
    assert.deepEqual([misfiled.status, misfiled.error?.code], [409, "23503"]);
    assert.equal((await messageIds(sql, session.id)).length, 3);
  });
});
