// The Auth stand-in's settings: the `[auth]` part of supabase/config.toml that Supabase Auth reads when
// `supabase start` runs it, read the way the CLI passes it on (jwt_expiry, enable_signup, password rules,
// refresh token rotation, [auth.email], [auth.rate_limit]). Any of those keys can be overridden with an env var
// named after it, SUPABASE_AUTH_<KEY> (`[auth.rate_limit] sign_in_sign_ups` → SUPABASE_AUTH_RATE_LIMIT_SIGN_IN_SIGN_UPS),
// which is how tests start an instance with a small limit or sign-ups disabled. Values may be `env(NAME)`.
import { parse as parseToml } from "npm:smol-toml@1.4.2";

export type AuthConfig = {
  /** `iss` of every access token: [auth] jwt_issuer, else [auth] external_url, else the API URL + /auth/v1. */
  issuer: string;
  /** The audience of user tokens and users (GOTRUE_JWT_AUD). */
  audience: "authenticated";
  /** The role a new user gets (GOTRUE_JWT_DEFAULT_GROUP_NAME). */
  defaultRole: "authenticated";
  /** Roles whose token may call the admin API (GOTRUE_JWT_ADMIN_ROLES, as the CLI sets it). */
  adminRoles: readonly string[];
  /** Lifetime of an access token in seconds. */
  jwtExpiry: number;
  enableSignup: boolean;
  email: { enableSignup: boolean; enableConfirmations: boolean };
  phone: { enableSignup: boolean };
  enableAnonymousSignIns: boolean;
  password: { minLength: number; requiredCharacters: readonly string[] };
  refreshTokenRotation: boolean;
  /** Seconds after its revocation during which a refresh token may still be used. */
  refreshTokenReuseInterval: number;
  /** Requests per 5 minutes per IP: sign-ups and password sign-ins; refresh token grants. */
  rateLimits: { signInSignUps: number; tokenRefresh: number };
};

// The characters each `password_requirements` value demands, one set per entry, as the CLI hands them to Auth.
const LOWER = "abcdefghijklmnopqrstuvwxyz";
const UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const DIGITS = "0123456789";
const SYMBOLS = "!@#$%^&*()_+-=[]{};'\\:\"|<>?,./`~";
const PASSWORD_REQUIREMENTS: Record<string, readonly string[]> = {
  "": [],
  letters_digits: [LOWER + UPPER, DIGITS],
  lower_upper_letters_digits: [LOWER, UPPER, DIGITS],
  lower_upper_letters_digits_symbols: [LOWER, UPPER, DIGITS, SYMBOLS],
};

type Table = Record<string, unknown>;

const JWT_EXPIRY_MAX = 604_800; // one week, Auth's own upper bound

/** Reads the settings from a parsed config.toml and the environment; throws on a value Auth would refuse. */
export function authConfigFrom(toml: Table, env: (name: string) => string | undefined): AuthConfig {
  const api = table(toml.api);
  const auth = table(toml.auth);
  const setting = settingReader(env);

  const apiUrl = trimSlash(
    setting(api, "external_url", "SUPABASE_API_EXTERNAL_URL", "string") ??
      `http://127.0.0.1:${setting(api, "port", "SUPABASE_API_PORT", "number") ?? 54321}`,
  );
  const externalUrl = setting(auth, "external_url", "SUPABASE_AUTH_EXTERNAL_URL", "string") ||
    `${apiUrl}/auth/v1`;
  const issuer = setting(auth, "jwt_issuer", "SUPABASE_AUTH_JWT_ISSUER", "string") || externalUrl;

  const jwtExpiry = setting(auth, "jwt_expiry", "SUPABASE_AUTH_JWT_EXPIRY", "number") ?? 3600;
  if (!Number.isInteger(jwtExpiry) || jwtExpiry < 1 || jwtExpiry > JWT_EXPIRY_MAX) {
    throw new Error(`[auth] jwt_expiry must be a whole number of seconds from 1 to ${JWT_EXPIRY_MAX}`);
  }
  const requirements =
    setting(auth, "password_requirements", "SUPABASE_AUTH_PASSWORD_REQUIREMENTS", "string") ?? "";
  const requiredCharacters = PASSWORD_REQUIREMENTS[requirements];
  if (!requiredCharacters) {
    throw new Error(
      `[auth] password_requirements must be one of ${
        Object.keys(PASSWORD_REQUIREMENTS).map((k) => `"${k}"`)
      }`,
    );
  }
  const email = table(auth.email);
  const sms = table(auth.sms);
  const rateLimit = table(auth.rate_limit);
  const limit = (key: string, fallback: number) => {
    const value = setting(rateLimit, key, `SUPABASE_AUTH_RATE_LIMIT_${key.toUpperCase()}`, "number") ??
      fallback;
    if (!Number.isInteger(value) || value < 1) {
      throw new Error(`[auth.rate_limit] ${key} must be a positive integer`);
    }
    return value;
  };

  return {
    issuer,
    audience: "authenticated",
    defaultRole: "authenticated",
    adminRoles: ["service_role"],
    jwtExpiry,
    enableSignup: setting(auth, "enable_signup", "SUPABASE_AUTH_ENABLE_SIGNUP", "boolean") ?? true,
    email: {
      enableSignup: setting(email, "enable_signup", "SUPABASE_AUTH_EMAIL_ENABLE_SIGNUP", "boolean") ?? true,
      enableConfirmations:
        setting(email, "enable_confirmations", "SUPABASE_AUTH_EMAIL_ENABLE_CONFIRMATIONS", "boolean") ??
          false,
    },
    phone: {
      enableSignup: setting(sms, "enable_signup", "SUPABASE_AUTH_SMS_ENABLE_SIGNUP", "boolean") ?? false,
    },
    enableAnonymousSignIns:
      setting(auth, "enable_anonymous_sign_ins", "SUPABASE_AUTH_ENABLE_ANONYMOUS_SIGN_INS", "boolean") ??
        false,
    password: {
      minLength:
        setting(auth, "minimum_password_length", "SUPABASE_AUTH_MINIMUM_PASSWORD_LENGTH", "number") ?? 6,
      requiredCharacters,
    },
    refreshTokenRotation: setting(
      auth,
      "enable_refresh_token_rotation",
      "SUPABASE_AUTH_ENABLE_REFRESH_TOKEN_ROTATION",
      "boolean",
    ) ?? true,
    refreshTokenReuseInterval:
      setting(auth, "refresh_token_reuse_interval", "SUPABASE_AUTH_REFRESH_TOKEN_REUSE_INTERVAL", "number") ??
        10,
    rateLimits: { signInSignUps: limit("sign_in_sign_ups", 30), tokenRefresh: limit("token_refresh", 150) },
  };
}

/** The settings of the project in `configFile` (supabase/config.toml) and this process's environment. */
export async function loadAuthConfig(configFile: string): Promise<AuthConfig> {
  return authConfigFrom(parseToml(await Deno.readTextFile(configFile)), (name) => Deno.env.get(name));
}

type Kind = { string: string; number: number; boolean: boolean };

/** Reads one key: the env override first, then the TOML value (with `env(NAME)` substituted), else undefined. */
function settingReader(env: (name: string) => string | undefined) {
  return <K extends keyof Kind>(from: Table, key: string, envName: string, kind: K): Kind[K] | undefined => {
    let value: unknown = env(envName) ?? from[key];
    if (typeof value === "string") {
      const reference = value.match(/^env\((\w+)\)$/);
      if (reference) value = env(reference[1]) ?? "";
    }
    if (value === undefined) return undefined;
    return coerce(value, kind, `${key} (${envName})`);
  };
}

function coerce<K extends keyof Kind>(value: unknown, kind: K, name: string): Kind[K] {
  const type: string = typeof value;
  if (type === kind) return value as Kind[K];
  if (typeof value === "string") {
    if (kind === "number" && /^\d+$/.test(value)) return Number(value) as Kind[K];
    if (kind === "boolean" && (value === "true" || value === "false")) return (value === "true") as Kind[K];
  }
  if (kind === "string" && typeof value === "number") return String(value) as Kind[K];
  throw new Error(`auth setting ${name} must be a ${kind}`);
}

function table(value: unknown): Table {
  return value !== null && typeof value === "object" && !Array.isArray(value) ? value as Table : {};
}

const trimSlash = (url: string) => url.replace(/\/+$/, "");
