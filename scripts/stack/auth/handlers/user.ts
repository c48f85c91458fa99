// GET /user — supabase.auth.getUser: the signed-in user (its session must still exist).
// PUT /user { email, password, data } — supabase.auth.updateUser: `data` merges into user_metadata (null removes
// a key); a new password must differ from the old one and meet the rules, and signs out the user's other
// sessions; a new email must be free and is applied at once (no confirmation mail locally). app_metadata is
// never the user's to change: 403 not_admin.
import { requireUser } from "../authenticate.ts";
import type { Handler } from "../context.ts";
import { badRequest, emailExists, forbidden, unprocessable } from "../errors.ts";
import { field, json, readBody, requestAudience } from "../http.ts";
import { deleteOtherSessions, deleteUserSessions } from "../store/sessions.ts";
import {
  emailTaken,
  findUserById,
  lockEmail,
  mergeAppMetadata,
  mergeUserMetadata,
  passwordMatches,
  setEmail,
  setPassword,
  updateEmailIdentity,
} from "../store/users.ts";
import { userJson } from "../user-json.ts";
import { assertStrongPassword, validEmail } from "../validation.ts";

export const getUser: Handler = async (service, { req }) => {
  const { claims, user } = await requireUser(service, req);
  const tokenAudience = Array.isArray(claims.aud) ? claims.aud[0] : claims.aud;
  // The request's audience is its X-JWT-AUD header, else the token's own (Auth's rule), so only a header can differ.
  if (tokenAudience !== requestAudience(req, tokenAudience ?? service.config.audience)) {
    throw badRequest("validation_failed", "Token audience doesn't match request audience");
  }
  return json(userJson(user));
};

export const updateUser: Handler = async (service, { req }) => {
  const { config, db } = service;
  const { user, sessionId } = await requireUser(service, req);
  const body = await readBody(req);
  const rawEmail = field(body, "email", "string") ?? "";
  const password = field(body, "password", "string");
  const data = field(body, "data", "object");
  const appMetadata = field(body, "app_metadata", "object");

  const email = rawEmail === "" ? null : validEmail(rawEmail);
  if (field(body, "phone", "string")) {
    throw badRequest(
      "validation_failed",
      "Changing the phone number is not supported by the local Auth stand-in",
    );
  }
  if (password !== undefined) assertStrongPassword(config, password);
  // Auth lets only users of its admin group (role "admin") change their own app_metadata.
  if (appMetadata && user.role !== "admin") {
    throw forbidden("not_admin", "Updating app_metadata requires admin privileges");
  }
  const newEmail = email !== null && email !== user.email ? email : null;
  if (newEmail && await emailTaken(db, newEmail, user.aud, user.id)) {
    throw emailExists();
  }
  if (password && user.has_password && await passwordMatches(db, user.id, password)) {
    throw unprocessable("same_password", "New password should be different from the old password.");
  }

  const updated = await db.begin(async (tx) => {
    if (password !== undefined) {
      await setPassword(tx, user.id, password);
      // A new password ends every other session (all of them for a token without a session).
      if (sessionId) await deleteOtherSessions(tx, user.id, sessionId);
      else await deleteUserSessions(tx, user.id);
    }
    if (data) await mergeUserMetadata(tx, user.id, data);
    if (appMetadata) await mergeAppMetadata(tx, user.id, appMetadata);
    if (newEmail) {
      await lockEmail(tx, newEmail);
      if (await emailTaken(tx, newEmail, user.aud, user.id)) {
        throw emailExists();
      }
      await setEmail(tx, user.id, newEmail);
      await updateEmailIdentity(tx, user.id, { email: newEmail });
    }
    return await findUserById(tx, user.id);
  });
  return json(userJson(updated!));
};
