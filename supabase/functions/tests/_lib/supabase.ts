// supabase-js clients against the local stack's API URL (the Data API and Auth stand-ins behind the gateway),
// configured as a front end or a server would configure them.
import { createClient, type SupabaseClient } from "npm:@supabase/supabase-js@2.119.0";
import type { Database } from "../../_shared/database.types.ts";
import { stack } from "./stack.ts";

export type Client = SupabaseClient<Database>;

/** A browser-like client with the anon key; no session is stored between tests. */
export function anonClient(): Client {
  return createClient<Database>(stack.apiUrl, stack.anonKey, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
  });
}

/** A client that sends `accessToken` as the user's token (what a signed-in front end sends). */
export function clientWithToken(accessToken: string): Client {
  return createClient<Database>(stack.apiUrl, stack.anonKey, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    global: { headers: { Authorization: `Bearer ${accessToken}` } },
  });
}

/** A server-side client with the service_role key (bypasses RLS; the only one allowed the Auth admin API). */
export function serviceClient(): Client {
  return createClient<Database>(stack.apiUrl, stack.serviceRoleKey, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
  });
}
