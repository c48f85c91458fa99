// POST /logout?scope=global|local|others — supabase.auth.signOut: deletes the user's sessions (all of them,
// this one, or all but this one); their refresh tokens go with them and their access tokens stop working on
// /user. 204 No Content.
import { requireUser } from "../authenticate.ts";
import type { Handler } from "../context.ts";
import { badRequest } from "../errors.ts";
import { noContent } from "../http.ts";
import { deleteOtherSessions, deleteSession, deleteUserSessions } from "../store/sessions.ts";

export const logout: Handler = async (service, { req, url }) => {
  const { user, sessionId } = await requireUser(service, req);
  const scope = url.searchParams.get("scope") ?? "";
  if (!["", "global", "local", "others"].includes(scope)) {
    throw badRequest("validation_failed", `Unsupported logout scope "${scope}"`);
  }
  if (sessionId && scope === "local") await deleteSession(service.db, sessionId);
  else if (sessionId && scope === "others") await deleteOtherSessions(service.db, user.id, sessionId);
  else await deleteUserSessions(service.db, user.id);
  return noContent();
};
