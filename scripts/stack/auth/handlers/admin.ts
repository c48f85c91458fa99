// The admin API (supabase.auth.admin.*), for a service_role token only (anything else: 403 not_admin):
//   GET    /admin/users?page=&per_page=   listUsers: newest first, Link (next/last) and X-Total-Count headers
//   POST   /admin/users                   createUser { email, password, email_confirm, user_metadata, app_metadata,
//                                          id, role, ban_duration }
//   GET    /admin/users/:id               getUserById
//   PUT    /admin/users/:id               updateUserById (the only way to set app_metadata); a new password
//                                          signs the user out everywhere
//   DELETE /admin/users/:id               deleteUser { should_soft_delete }: a hard delete cascades to the
//                                          product's rows; a soft delete keeps the row, erased
import { requireAdmin } from "../authenticate.ts";
import type { AuthService, Handler } from "../context.ts";
import { parseGoDuration } from "../duration.ts";
import { badRequest, emailExists, notFound, unprocessable } from "../errors.ts";
import { type Body, field, json, readBody, requestAudience } from "../http.ts";
import { deleteUserSessions } from "../store/sessions.ts";
import {
  confirmEmail,
  deleteUser,
  EMAIL_APP_METADATA,
  emailTaken,
  findUserById,
  insertEmailIdentity,
  insertUser,
  listUsers,
  lockEmail,
  mergeAppMetadata,
  mergeUserMetadata,
  setBan,
  setEmail,
  setPassword,
  setRole,
  softDeleteUser,
  updateEmailIdentity,
  type UserRecord,
} from "../store/users.ts";
import { userJson } from "../user-json.ts";
import { assertPasswordLength, assertStrongPassword, validEmail } from "../validation.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const NIL_UUID = "00000000-0000-0000-0000-000000000000";

export const adminListUsers: Handler = async (service, { req, url }) => {
  await requireAdmin(service, req);
  const page = Math.max(1, pageParameter(url, "page") ?? 1);
  const perPageAsked = pageParameter(url, "per_page") ?? 50;
  const perPage = perPageAsked < 1 ? 20 : perPageAsked;
  const aud = requestAudience(req, service.config.audience);
  const { users, total } = await listUsers(
    service.db,
    aud,
    { page, perPage },
    url.searchParams.get("filter") ?? "",
  );
  return json({ users: users.map(userJson), aud }, 200, {
    link: paginationLinks(url, page, perPage, total),
    "x-total-count": String(total),
  });
};

export const adminCreateUser: Handler = async (service, { req }) => {
  await requireAdmin(service, req);
  const body = await readBody(req);
  const params = adminParams(body);
  const aud = field(body, "aud", "string") || requestAudience(req, service.config.audience);
  if (!params.email && !params.phone) {
    throw badRequest("validation_failed", "Cannot create a user without either an email or phone");
  }
  if (params.phone) {
    throw badRequest("validation_failed", "Phone users are not supported by the local Auth stand-in");
  }
  if (field(body, "password_hash", "string")) {
    throw badRequest("validation_failed", "password_hash is not supported by the local Auth stand-in");
  }
  const email = validEmail(params.email!);
  const password = params.password || randomPassword();
  assertPasswordLength(password);
  const id = field(body, "id", "string");
  if (id !== undefined && !UUID.test(id)) {
    throw badRequest("validation_failed", "ID must conform to the uuid v4 format");
  }
  if (id === NIL_UUID) throw badRequest("validation_failed", "ID cannot be a nil uuid");
  const banSeconds = banDuration(params.banDuration);

  const created = await service.db.begin(async (tx) => {
    await lockEmail(tx, email);
    if (await emailTaken(tx, email, aud)) throw emailExists();
    if (id && await findUserById(tx, id)) {
      throw unprocessable("user_already_exists", "A user with this ID already exists");
    }
    const userId = await insertUser(tx, {
      id,
      email,
      password,
      aud,
      role: params.role || service.config.defaultRole,
      userMetadata: params.userMetadata ?? {},
      appMetadata: EMAIL_APP_METADATA,
    });
    await insertEmailIdentity(tx, userId, email, { email_verified: false, phone_verified: false });
    if (params.appMetadata) await mergeAppMetadata(tx, userId, params.appMetadata);
    if (params.emailConfirm) await confirmEmail(tx, userId);
    if (banSeconds !== undefined) await setBan(tx, userId, banSeconds);
    return await findUserById(tx, userId);
  });
  return json(userJson(created!));
};

export const adminGetUser: Handler = async (service, { req, params }) => {
  await requireAdmin(service, req);
  return json(userJson(await loadUser(service, params.id)));
};

export const adminUpdateUser: Handler = async (service, { req, params: path }) => {
  await requireAdmin(service, req);
  const user = await loadUser(service, path.id);
  const body = await readBody(req);
  const params = adminParams(body);
  const email = params.email ? validEmail(params.email) : null;
  if (params.phone) {
    throw badRequest("validation_failed", "Phone users are not supported by the local Auth stand-in");
  }
  const banSeconds = banDuration(params.banDuration);
  if (params.password !== undefined) assertStrongPassword(service.config, params.password);

  const updated = await service.db.begin(async (tx) => {
    if (params.role) await setRole(tx, user.id, params.role);
    if (params.emailConfirm) await confirmEmail(tx, user.id);
    if (params.password !== undefined) {
      await setPassword(tx, user.id, params.password);
      await deleteUserSessions(tx, user.id); // a password set by an admin signs the user out everywhere
    }
    if (email) {
      await lockEmail(tx, email);
      if (email !== user.email && await emailTaken(tx, email, user.aud, user.id)) {
        throw emailExists();
      }
      if (user.identities.some((i) => i.provider === "email")) {
        await updateEmailIdentity(tx, user.id, { email, email_verified: params.emailConfirm });
      } else {
        await insertEmailIdentity(tx, user.id, email, {
          email_verified: params.emailConfirm,
          phone_verified: false,
        });
      }
      await setEmail(tx, user.id, email);
    }
    if (params.appMetadata) await mergeAppMetadata(tx, user.id, params.appMetadata);
    if (params.userMetadata) await mergeUserMetadata(tx, user.id, params.userMetadata);
    if (banSeconds !== undefined) await setBan(tx, user.id, banSeconds);
    return await findUserById(tx, user.id);
  });
  return json(userJson(updated!));
};

export const adminDeleteUser: Handler = async (service, { req, params }) => {
  await requireAdmin(service, req);
  const user = await loadUser(service, params.id);
  const soft = field(await readBody(req, { optional: true }), "should_soft_delete", "boolean") ?? false;
  if (soft) {
    if (!user.deleted_at) await service.db.begin((tx) => softDeleteUser(tx, user.id));
  } else {
    await deleteUser(service.db, user.id);
  }
  return json({});
};

type AdminParams = {
  email?: string;
  phone?: string;
  password?: string;
  emailConfirm: boolean;
  userMetadata?: Record<string, unknown>;
  appMetadata?: Record<string, unknown>;
  role?: string;
  banDuration?: string;
};

function adminParams(body: Body): AdminParams {
  return {
    email: field(body, "email", "string"),
    phone: field(body, "phone", "string"),
    password: field(body, "password", "string"),
    emailConfirm: field(body, "email_confirm", "boolean") ?? false,
    userMetadata: field(body, "user_metadata", "object"),
    appMetadata: field(body, "app_metadata", "object"),
    role: field(body, "role", "string"),
    banDuration: field(body, "ban_duration", "string"),
  };
}

async function loadUser(service: AuthService, id: string): Promise<UserRecord> {
  if (!UUID.test(id)) throw notFound("validation_failed", "user_id must be an UUID");
  const user = await findUserById(service.db, id);
  if (!user) throw notFound("user_not_found", "User not found");
  return user;
}

/** Seconds to ban for: undefined (no change), 0 ("none": lift the ban) or a Go duration. */
function banDuration(value: string | undefined): number | undefined {
  if (value === undefined || value === "") return undefined;
  if (value === "none") return 0;
  const seconds = parseGoDuration(value);
  if (seconds === null) {
    throw badRequest(
      "validation_failed",
      `invalid format for ban duration: time: invalid duration "${value}"`,
    );
  }
  return seconds;
}

function pageParameter(url: URL, name: string): number | undefined {
  const value = url.searchParams.get(name) ?? "";
  if (value === "") return undefined;
  if (!/^\d+$/.test(value)) {
    throw badRequest(
      "validation_failed",
      `Bad Pagination Parameters: strconv.ParseUint: parsing "${value}": invalid syntax`,
    );
  }
  return Number(value);
}

/** Auth's Link header: `next` while there is a later page, and `last`, as relative URLs of this request. */
function paginationLinks(url: URL, page: number, perPage: number, total: number): string {
  const totalPages = Math.ceil(total / perPage);
  const link = (n: number) => {
    const query = new URLSearchParams(url.searchParams);
    query.set("page", String(n));
    const sorted = new URLSearchParams([...query.entries()].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0));
    return `<${url.pathname}?${sorted}>`;
  };
  const next = totalPages > page ? `${link(page + 1)}; rel="next", ` : "";
  return `${next}${link(totalPages)}; rel="last"`;
}

/** A password for a user created without one (64 characters, as Auth generates). */
function randomPassword(): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  return Array.from(crypto.getRandomValues(new Uint8Array(64)), (b) => alphabet[b % alphabet.length]).join(
    "",
  );
}
