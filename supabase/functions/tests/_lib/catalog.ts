// Test employees: a listed AI employee in a category of its own (operators' inserts, as superuser; its first version
// made by the catalog's trigger), and its removal after the test's users.
import type { Sql } from "./db.ts";

export type Employee = { id: string; slug: string; category: string };

export async function createEmployee(
  sql: Sql,
  fields: {
    provider: string;
    model: string;
    tools?: string[];
    settings?: Record<string, unknown>;
    prompt?: string;
    /** The category's prefix (default test-agents). */
    prefix?: string;
  },
): Promise<Employee> {
  const category = `${fields.prefix ?? "test-agents"}-${crypto.randomUUID().slice(0, 8)}`;
  const slug = `${category}-worker`;
  await sql`insert into public.ai_employee_categories (slug, name) values (${category}, 'Test employees')`;
  const [row] = await sql<{ id: string }[]>`
    insert into public.ai_employees (slug, name, role, category, department, level, status, short_description,
                                     provider, model, system_prompt, tools, generation_settings)
    values (${slug}, 'Worker', 'Test role', ${category}, 'Test', 'mid', 'available', 'A test employee',
            ${fields.provider}, ${fields.model}, ${fields.prompt ?? `You are the test worker ${slug}.`},
            ${fields.tools ?? []}, ${sql.json((fields.settings ?? {}) as never)})
    returning id`;
  return { id: row.id, slug, category };
}

/** Deletes the employee and its category (after its hirers: hires reference it). */
export async function deleteEmployee(sql: Sql, e: Employee): Promise<void> {
  await sql`delete from public.ai_employees where id = ${e.id}`;
  await sql`delete from public.ai_employee_categories where slug = ${e.category}`;
}
