// GET /health — Auth's liveness answer; GET /settings — which sign-in methods the project allows (what a sign-in
// page may ask before it shows its buttons).
import type { Handler } from "../context.ts";
import { json } from "../http.ts";

export const health: Handler = () =>
  Promise.resolve(json({
    version: "local-stand-in",
    name: "GoTrue",
    description: "GoTrue is a user registration and authentication API",
  }));

export const settings: Handler = ({ config }) =>
  Promise.resolve(json({
    external: {
      anonymous_users: config.enableAnonymousSignIns,
      email: config.email.enableSignup,
      phone: config.phone.enableSignup,
    },
    disable_signup: !config.enableSignup,
    mailer_autoconfirm: !config.email.enableConfirmations,
    phone_autoconfirm: false,
    sms_provider: "",
    saml_enabled: false,
  }));
