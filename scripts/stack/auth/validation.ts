// Input rules as Supabase Auth applies them: the email format (400 validation_failed), the addresses hosted Auth
// refuses to send mail to (400 email_address_invalid; applied only where Auth would send a mail), and password
// strength from [auth] minimum_password_length / password_requirements (422 weak_password with its reasons;
// over 72 bytes, bcrypt's limit, is 400 validation_failed).
import type { AuthConfig } from "./config.ts";
import { badRequest, weakPassword } from "./errors.ts";

const EMAIL_FORMAT =
  /^[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/;

/** The address lowercased, or 400 validation_failed. */
export function validEmail(email: string): string {
  if (email === "") throw badRequest("validation_failed", "An email address is required");
  if (email.length > 255) throw badRequest("validation_failed", "An email address is too long");
  if (!EMAIL_FORMAT.test(email)) {
    throw badRequest("validation_failed", "Unable to validate email address: invalid format");
  }
  return email.toLowerCase();
}

// Addresses and hosts hosted Auth's mail validation refuses without a DNS lookup (RFC 2606 names and the usual
// typos); it checks them only before it sends a mail.
const INVALID_ADDRESSES = new Set([
  "test@gmail.com",
  "example@gmail.com",
  "someone@gmail.com",
  "test@email.com",
]);
const INVALID_HOSTS = new Set([
  "test",
  "example",
  "invalid",
  "local",
  "localhost",
  "test.com",
  "example.com",
  "example.net",
  "example.org",
  "gamil.com",
  "gamai.com",
  "anonymous.com",
  "email.com",
]);
const INVALID_HOST_SUFFIXES = [".test", ".example", ".invalid", ".local", ".localhost"];

/** 400 email_address_invalid for an address hosted Auth would not mail. */
export function assertMailable(email: string): void {
  const host = email.slice(email.lastIndexOf("@") + 1);
  if (
    INVALID_ADDRESSES.has(email) || INVALID_HOSTS.has(host) ||
    INVALID_HOST_SUFFIXES.some((suffix) => host.endsWith(suffix))
  ) {
    throw badRequest("email_address_invalid", `Email address "${email}" is invalid`);
  }
}

const PASSWORD_MAX_BYTES = 72;
const byteLength = (text: string) => new TextEncoder().encode(text).length;

/** What is wrong with the password under the project's rules, or null. */
export function passwordWeakness(
  config: AuthConfig,
  password: string,
): { message: string; reasons: string[] } | null {
  const messages: string[] = [];
  const reasons: string[] = [];
  const { minLength, requiredCharacters } = config.password;
  if (byteLength(password) < minLength) {
    reasons.push("length");
    messages.push(`Password should be at least ${minLength} characters.`);
  }
  if (requiredCharacters.some((set) => ![...set].some((c) => password.includes(c)))) {
    reasons.push("characters");
    messages.push(
      `Password should contain at least one character of each: ${requiredCharacters.join(", ")}.`,
    );
  }
  return reasons.length ? { message: messages.join(" "), reasons } : null;
}

/** 400 if the password is longer than bcrypt takes. */
export function assertPasswordLength(password: string): void {
  if (byteLength(password) > PASSWORD_MAX_BYTES) {
    throw badRequest("validation_failed", `Password cannot be longer than ${PASSWORD_MAX_BYTES} characters`);
  }
}

/** 400 for a too long password, 422 weak_password for one the rules refuse. */
export function assertStrongPassword(config: AuthConfig, password: string): void {
  assertPasswordLength(password);
  const weakness = passwordWeakness(config, password);
  if (weakness) throw weakPassword(weakness.message, weakness.reasons);
}
