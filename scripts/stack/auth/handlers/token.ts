// POST /token?grant_type=password { email, password } — supabase.auth.signInWithPassword; and
// POST /token?grant_type=refresh_token { refresh_token } — supabase.auth.refreshSession (and auto-refresh).
// Sign-ins count against [auth.rate_limit] sign_in_sign_ups per IP, refreshes against token_refresh.
// A wrong email and a wrong password are the same 400 invalid_credentials.
import { isBanned } from "../authenticate.ts";
import type { AuthService, Call, Handler } from "../context.ts";
import { badRequest, tooManyRequests, unprocessable } from "../errors.ts";
import { field, json, readBody, requestAudience } from "../http.ts";
import { refreshSession } from "../refresh.ts";
import { findUserByEmail, passwordMatches } from "../store/users.ts";
import { issueSession } from "../tokens.ts";
import { passwordWeakness } from "../validation.ts";

const INVALID_LOGIN = "Invalid login credentials";

export const token: Handler = async (service, call) => {
  const grantType = call.url.searchParams.get("grant_type");
  if (grantType === "password") {
    if (!service.limits.signInSignUps.take(call.client.ip)) throw tooManyRequests();
    return await passwordGrant(service, call);
  }
  if (grantType === "refresh_token") {
    if (!service.limits.tokenRefresh.take(call.client.ip)) throw tooManyRequests();
    const body = await readBody(call.req);
    return json(await refreshSession(service, field(body, "refresh_token", "string") ?? "", call.client));
  }
  // pkce, id_token and web3 need flows (OAuth, OIDC, wallets) the local stand-in does not have.
  throw badRequest("invalid_credentials", "unsupported_grant_type");
};

async function passwordGrant(service: AuthService, { req, client }: Call): Promise<Response> {
  const { config } = service;
  const body = await readBody(req);
  const email = field(body, "email", "string") ?? "";
  const phone = field(body, "phone", "string") ?? "";
  const password = field(body, "password", "string") ?? "";

  if (email !== "" && phone !== "") {
    throw badRequest(
      "validation_failed",
      "Only an email address or phone number should be provided on login.",
    );
  }
  if (phone !== "") throw unprocessable("phone_provider_disabled", "Phone logins are disabled");
  if (email === "") throw badRequest("validation_failed", "missing email or phone");
  if (!config.email.enableSignup) throw unprocessable("email_provider_disabled", "Email logins are disabled");

  const user = await findUserByEmail(service.db, email, requestAudience(req, config.audience));
  if (!user || !user.has_password) throw badRequest("invalid_credentials", INVALID_LOGIN);
  if (isBanned(user)) throw badRequest("user_banned", "User is banned");
  if (!await passwordMatches(service.db, user.id, password)) {
    throw badRequest("invalid_credentials", INVALID_LOGIN);
  }
  if (!user.email_confirmed_at) throw badRequest("email_not_confirmed", "Email not confirmed");

  const session = await service.db.begin((tx) => issueSession(tx, service.signer, user.id, client));
  // A password the current rules would refuse still signs in; the answer says so (auth-js: data.weak_password).
  const weakness = passwordWeakness(config, password);
  return json(weakness ? { ...session, weak_password: weakness } : session);
}
