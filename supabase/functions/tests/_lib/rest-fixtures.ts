// Fixtures for the Data API conformance tests (rest-*_test.ts): tables and functions named conformance_* in
// public, for what the product's own tables do not have (arrays, tsvector, ambiguous and many-to-many
// relationships, upsert targets, RPCs of every shape). Created as superuser with explicit grants and RLS, then
// `notify pgrst, 'reload schema'` and a wait until the Data API sees them; dropped the same way at the end.
import type { Sql } from "./db.ts";
import { stack } from "./stack.ts";

export const REST_URL = `${stack.apiUrl}/rest/v1`;

export type Fixture = {
  /** Tables (and views) the DDL creates, dropped with cascade before and after. */
  tables: string[];
  /** Functions the DDL creates, by signature (`public.conformance_x(int)`), dropped before and after. */
  functions?: string[];
  ddl: string;
  /** A path under /rest/v1 that answers 200 once the schema cache has the fixture (e.g. `conformance_x?limit=0`). */
  probe: string;
};

async function restAnswer(path: string): Promise<{ status: number; code: string | null }> {
  const res = await fetch(`${REST_URL}/${path}`, {
    headers: { apikey: stack.serviceRoleKey, authorization: `Bearer ${stack.serviceRoleKey}` },
  });
  const text = await res.text();
  let code: string | null = null;
  try {
    code = (JSON.parse(text) as { code?: string }).code ?? null;
  } catch {
    // not JSON: no code
  }
  return { status: res.status, code };
}
const restStatus = async (path: string) => (await restAnswer(path)).status;

/** Asks the Data API to reload its schema cache and waits until `ready` says the change is visible. */
export async function reloadSchemaCache(
  sql: Sql,
  ready: () => Promise<boolean>,
  timeoutMs = 15_000,
): Promise<void> {
  await sql`notify pgrst, 'reload schema'`;
  const deadline = Date.now() + timeoutMs;
  while (!(await ready())) {
    if (Date.now() > deadline) throw new Error("the Data API did not reload its schema cache in time");
    await new Promise((r) => setTimeout(r, 100));
  }
}

export const answers = (path: string, status: number) => async () => (await restStatus(path)) === status;

/** True once the schema cache no longer knows the table or function (PGRST205/PGRST202, not a 42P01 from SQL). */
export const unknownToCache = (path: string) => async () => {
  const { status, code } = await restAnswer(path);
  return status === 404 && (code === "PGRST205" || code === "PGRST202");
};

async function dropObjects(sql: Sql, f: Fixture): Promise<void> {
  for (const fn of f.functions ?? []) await sql.unsafe(`drop function if exists ${fn} cascade`);
  for (const t of [...f.tables].reverse()) await sql.unsafe(`drop table if exists public.${t} cascade`);
}

export async function createFixture(sql: Sql, f: Fixture): Promise<void> {
  await dropObjects(sql, f);
  await sql.unsafe(f.ddl);
  await reloadSchemaCache(sql, answers(f.probe, 200));
}

export async function dropFixture(sql: Sql, f: Fixture): Promise<void> {
  await dropObjects(sql, f);
  await reloadSchemaCache(sql, unknownToCache(f.probe));
}

/** A raw request to the Data API, for what supabase-js cannot express (bad tokens, HEAD headers, Range). */
export function rest(
  path: string,
  init: RequestInit & { token?: string; apikey?: string } = {},
): Promise<Response> {
  const { token, apikey, headers, ...rest } = init;
  const h = new Headers(headers);
  h.set("apikey", apikey ?? stack.anonKey);
  if (token !== undefined) h.set("authorization", `Bearer ${token}`);
  return fetch(`${REST_URL}/${path}`, { ...rest, headers: h });
}
