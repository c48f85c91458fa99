// POST /signup { email, password, data } — supabase.auth.signUp. With email confirmations off (the local
// default) the user is confirmed at once and the answer is a session; with them on, the answer is the
// unconfirmed user (no mail is sent locally). Order of checks as in Auth: anonymous sign-ins, the per-IP limit,
// sign-ups enabled, the password, the provider, the email; an email already confirmed is 422 user_already_exists.
import type { Handler } from "../context.ts";
import { badRequest, tooManyRequests, unprocessable } from "../errors.ts";
import { field, json, readBody, requestAudience } from "../http.ts";
import {
  confirmEmail,
  EMAIL_APP_METADATA,
  findUserByEmail,
  findUserById,
  insertEmailIdentity,
  insertUser,
  type Json,
  lockEmail,
} from "../store/users.ts";
import { issueSession } from "../tokens.ts";
import { userJson } from "../user-json.ts";
import { assertMailable, assertStrongPassword, validEmail } from "../validation.ts";

export const signup: Handler = async (service, { req, client }) => {
  const { config } = service;
  const body = await readBody(req);
  const rawEmail = field(body, "email", "string") ?? "";
  const phone = field(body, "phone", "string") ?? "";
  const password = field(body, "password", "string") ?? "";
  const data: Json = field(body, "data", "object") ?? {};

  if (rawEmail === "" && phone === "") {
    throw unprocessable("anonymous_provider_disabled", "Anonymous sign-ins are disabled");
  }
  if (!service.limits.signInSignUps.take(client.ip)) throw tooManyRequests();
  if (!config.enableSignup) throw unprocessable("signup_disabled", "Signups not allowed for this instance");
  if (password === "") throw badRequest("validation_failed", "Signup requires a valid password");
  assertStrongPassword(config, password);
  if (rawEmail !== "" && phone !== "") {
    throw badRequest(
      "validation_failed",
      "Only an email address or phone number should be provided on signup.",
    );
  }
  if (phone !== "") throw badRequest("phone_provider_disabled", "Phone signups are disabled");
  if (!config.email.enableSignup) throw badRequest("email_provider_disabled", "Email signups are disabled");
  const email = validEmail(rawEmail);
  const aud = requestAudience(req, config.audience);
  const confirmAtOnce = !config.email.enableConfirmations;
  // Where hosted Auth would send the confirmation mail, it first checks the address can be mailed.
  if (!confirmAtOnce) assertMailable(email);

  const answer = await service.db.begin(async (tx) => {
    await lockEmail(tx, email);
    const existing = await findUserByEmail(tx, email, aud);
    if (existing?.email_confirmed_at) {
      if (confirmAtOnce) throw unprocessable("user_already_exists", "User already registered");
      return { alreadyRegistered: true as const };
    }
    // An existing unconfirmed user is confirmed as it is, without changing its password (Auth's behaviour).
    const userId = existing?.id ?? await insertUser(tx, {
      email,
      password,
      aud,
      role: config.defaultRole,
      userMetadata: data,
      appMetadata: EMAIL_APP_METADATA,
    });
    if (!existing?.identities.some((i) => i.provider === "email")) {
      await insertEmailIdentity(tx, userId, email, { ...data, email_verified: false, phone_verified: false });
    }
    if (!confirmAtOnce) return { user: await findUserById(tx, userId) };
    await confirmEmail(tx, userId);
    return { session: await issueSession(tx, service.signer, userId, client) };
  });

  if ("session" in answer) return json(answer.session);
  if ("user" in answer && answer.user) return json(userJson(answer.user));
  // Confirmations on and the address taken: Auth answers with a made-up user, so the answer does not tell.
  return json(obfuscatedUser(email, data, aud));
};

function obfuscatedUser(email: string, data: Json, aud: string) {
  const now = new Date().toISOString();
  return {
    id: crypto.randomUUID(),
    aud,
    role: "",
    email,
    phone: "",
    confirmation_sent_at: now,
    app_metadata: EMAIL_APP_METADATA,
    user_metadata: data,
    identities: [],
    created_at: now,
    updated_at: now,
    is_anonymous: false,
  };
}
