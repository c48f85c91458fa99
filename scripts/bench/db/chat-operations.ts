// bench:db's chat operations (issue 13), each the statement PostgREST sends for what a chat client asks, run as the
// other operations are (runAsUser: authenticator, one transaction, role authenticated and the user's claims, RLS on):
//   load       the seed's "chat message load": the last 50 messages of a session, `supabase.from('chat_messages')
//              .select(…).eq('session_id', id).order('created_at', { ascending: false }).limit(50)`, over random
//              sessions with 50 messages or more, and over random smaller ones
//   next page  the 50 before those by keyset, `supabase.rpc('list_chat_messages', { p_session_id, p_before })`, the
//              cursor being the oldest message of the first page
//   sessions   "my sessions, newest first": `.from('chat_sessions').select(…).eq('user_id', me)
//              .order('last_message_at', { ascending: false }).limit(50)`, over all the users
import type postgres from "npm:postgres@3.4.9";
import { type Operation, pgrstRead, pgrstRpc } from "./operations.ts";

/** The target for these operations. */
export const CHAT_TARGET_P95_MS = 1;
/** Sessions with at least this many messages fill the first page and have a next one. */
export const FULL_PAGE = 50;

export type ChatSession = { id: string; user: string; cursor: string | null };
export type ChatSample = { large: ChatSession[]; small: ChatSession[]; users: string[] };

// The columns a chat view shows.
const MESSAGE_COLUMNS = "id, parent_id, role, content, parts, status, error_code, model, created_at";
const SESSION_COLUMNS = "id, title, last_message_at, message_count, is_pinned, is_archived";

/**
 * `size` random sessions of the users with at least FULL_PAGE messages (with the cursor of their next page: the
 * FULL_PAGE-th newest message) and `size` with fewer. Throws when there are none of either.
 */
export async function sampleChat(admin: postgres.Sql, users: string[], size = 2000): Promise<ChatSample> {
  return await admin.begin(async (tx) => {
    await tx`select setseed(0.46)`;
    const pick = (large: boolean) =>
      tx`
        select s.id, s.user_id as user,
               (select m.id from public.chat_messages m where m.session_id = s.id
                 order by m.created_at desc, m.id desc offset ${FULL_PAGE - 1} limit 1) as cursor
          from public.chat_sessions s
         where s.user_id = any(${users}::uuid[]) and (s.message_count >= ${FULL_PAGE}) = ${large}
         order by random() limit ${size}` as unknown as Promise<ChatSession[]>;
    const [large, small] = [await pick(true), await pick(false)];
    if (!large.length || !small.length) {
      throw new Error(`no chat sessions to sample (${large.length} large, ${small.length} small)`);
    }
    return { large: [...large], small: [...small], users };
  });
}

/** The chat operations over a sample (the same statements on ours and on the seed's design). */
export function chatOperations(sample: ChatSample): Operation[] {
  const lastPage = (pool: ChatSession[]) => (n: number) => {
    const s = pool[n % pool.length];
    return {
      user: s.user,
      text: pgrstRead(
        `select ${MESSAGE_COLUMNS} from public.chat_messages where session_id = $1 ` +
          `order by created_at desc limit ${FULL_PAGE}`,
      ),
      params: [s.id],
    };
  };
  return [
    {
      key: "chat-load-large",
      name: `chat message load: last ${FULL_PAGE} (sessions ≥ ${FULL_PAGE} messages)`,
      call: lastPage(sample.large),
    },
    {
      key: "chat-load-small",
      name: `chat message load: last ${FULL_PAGE} (sessions < ${FULL_PAGE} messages)`,
      call: lastPage(sample.small),
    },
    {
      key: "chat-next-page",
      name: `chat: next ${FULL_PAGE} by keyset (list_chat_messages)`,
      call: (n) => {
        const s = sample.large[n % sample.large.length];
        return {
          user: s.user,
          text: pgrstRpc("list_chat_messages", "p_session_id := $1, p_before := $2"),
          params: [s.id, s.cursor],
        };
      },
    },
    {
      key: "chat-my-sessions",
      name: `chat: my sessions, newest first (${FULL_PAGE})`,
      call: (n) => {
        const user = sample.users[n % sample.users.length];
        return {
          user,
          text: pgrstRead(
            `select ${SESSION_COLUMNS} from public.chat_sessions where user_id = $1 ` +
              `order by last_message_at desc limit ${FULL_PAGE}`,
          ),
          params: [user],
        };
      },
    },
  ];
}
