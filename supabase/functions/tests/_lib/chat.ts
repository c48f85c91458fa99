// Fixtures for the chat client tests (chat-client_test.ts): one test AI employee in a category of its own (an
// operator's insert, as superuser), users signed up through Auth who hire it with hire_employee through supabase-js,
// and a service-key client for what the agents service writes (assistant and tool messages). Everything is removed
// when the test ends: its users (by email, with their hires, sessions and messages) first, then the employee and its
// category.
import { type AuthScenario, authScenario, type SignedUp } from "./auth.ts";
import { testSql } from "./db.ts";
import { type Client, serviceClient } from "./supabase.ts";
import type { Database } from "../../_shared/database.types.ts";
import { createEmployee, deleteEmployee } from "./catalog.ts";

type Tables = Database["public"]["Tables"];
export type Hire = Database["public"]["Functions"]["hire_employee"]["Returns"];
export type Session = Tables["chat_sessions"]["Row"];
export type Message = Tables["chat_messages"]["Row"];

/**
 * A chat session as a client inserts it. The generated Insert type requires employee_id (not null, no default), but
 * the database sets it from the hire (a trigger) and the client may not send it (column grants).
 */
export const sessionRow = (row: { user_id: string; hire_id: string; title?: string | null }) =>
  row as Tables["chat_sessions"]["Insert"];

/** A user signed up through Auth who has hired the scenario's employee; `db` is their supabase-js client. */
export type Hirer = SignedUp & { db: Client; hire: Hire };

export type ChatScenario = AuthScenario & {
  employeeId: string;
  slug: string;
  /** A new user, signed up through Auth, with a hire of the employee made by hire_employee. */
  hirer: () => Promise<Hirer>;
  /** A server's client with the service_role key (what the agents service writes with). */
  service: Client;
};

/** Runs `fn` with a fresh test employee and its hirers, all deleted afterwards (users first, then the employee). */
export async function chatScenario(fn: (s: ChatScenario) => Promise<void>): Promise<void> {
  const sql = testSql(1);
  const employee = await createEmployee(sql, {
    provider: "openai",
    model: "gpt-4o-mini",
    prompt: "You are a test.",
    prefix: "test-chat",
  });
  const { id, slug } = employee;
  try {
    // authScenario deletes its users (their hires, sessions and messages by cascade) before the employee goes.
    await authScenario((auth) =>
      fn({
        ...auth,
        employeeId: id,
        slug,
        service: serviceClient(),
        hirer: async () => {
          const user = await auth.signUp();
          const db = user.client.supabase;
          const { data: hire, error } = await db.rpc("hire_employee", { p_slug: slug });
          if (error || !hire) throw new Error(`hire_employee failed: ${error?.code} ${error?.message}`);
          return { ...user, db, hire };
        },
      })
    );
  } finally {
    await deleteEmployee(sql, employee);
    await sql.end();
  }
}
