// SQL for auth.users and auth.identities, as Supabase Auth reads and writes them. Passwords are hashed and
// checked in Postgres with pgcrypto: crypt(pw, gen_salt('bf', 10)) is bcrypt `$2a$10$…`, what Auth stores.
// Every value is a bound parameter; metadata changes merge one level deep, a null value removing its key.
import type { Db } from "../db.ts";

export type Json = Record<string, unknown>;

export type IdentityRow = {
  id: string;
  provider_id: string;
  user_id: string;
  identity_data: Json;
  provider: string;
  last_sign_in_at: string | null;
  created_at: string;
  updated_at: string;
  email: string | null;
};

export type UserRecord = {
  id: string;
  aud: string;
  role: string;
  email: string | null;
  phone: string | null;
  email_confirmed_at: Date | null;
  phone_confirmed_at: Date | null;
  confirmed_at: Date | null;
  invited_at: Date | null;
  last_sign_in_at: Date | null;
  app_metadata: Json;
  user_metadata: Json;
  identities: IdentityRow[];
  created_at: Date;
  updated_at: Date;
  banned_until: Date | null;
  deleted_at: Date | null;
  is_anonymous: boolean;
  has_password: boolean;
};

/** The app_metadata Auth gives an email user. */
export const EMAIL_APP_METADATA = { provider: "email", providers: ["email"] };

/** The instance every row belongs to (Auth's single-tenant instance id). */
const INSTANCE_ID = "00000000-0000-0000-0000-000000000000";

const userColumns = (db: Db) =>
  db`
  u.id, u.aud, u.role, u.email, u.phone, u.email_confirmed_at, u.phone_confirmed_at,
  least(u.email_confirmed_at, u.phone_confirmed_at) as confirmed_at, u.invited_at, u.last_sign_in_at,
  coalesce(u.raw_app_meta_data, '{}') as app_metadata, coalesce(u.raw_user_meta_data, '{}') as user_metadata,
  u.created_at, u.updated_at, u.banned_until, u.deleted_at, u.is_anonymous,
  coalesce(u.encrypted_password, '') <> '' as has_password,
  coalesce((select jsonb_agg(to_jsonb(i) order by i.created_at, i.id) from auth.identities i where i.user_id = u.id),
           '[]') as identities`;

export async function findUserById(db: Db, id: string): Promise<UserRecord | null> {
  const [user] = await db<UserRecord[]>`select ${userColumns(db)} from auth.users u where u.id = ${id}`;
  return user ?? null;
}

export async function findUserByEmail(db: Db, email: string, aud: string): Promise<UserRecord | null> {
  const [user] = await db<UserRecord[]>`
    select ${userColumns(db)} from auth.users u
     where lower(u.email) = lower(${email}) and u.aud = ${aud} and not u.is_sso_user
     order by u.created_at limit 1`;
  return user ?? null;
}

/** Whether `password` is the user's (bcrypt check in SQL); false for a user without a password. */
export async function passwordMatches(db: Db, userId: string, password: string): Promise<boolean> {
  const [row] = await db<{ ok: boolean }[]>`
    select coalesce(u.encrypted_password ~ '^\\$2[abxy]?\\$'
                    and extensions.crypt(${password}, u.encrypted_password) = u.encrypted_password, false) as ok
      from auth.users u where u.id = ${userId}`;
  return row?.ok ?? false;
}

/**
 * Whether another user of this audience already has the email: through an identity's email or the users table
 * (Auth's duplicate check).
 */
export async function emailTaken(
  db: Db,
  email: string,
  aud: string,
  exceptUserId?: string,
): Promise<boolean> {
  const [row] = await db<{ taken: boolean }[]>`
    select exists (
      select 1 from auth.users u
       where u.aud = ${aud} and not u.is_sso_user and u.id is distinct from ${exceptUserId ?? null}::uuid
         and (lower(u.email) = lower(${email})
              or u.id in (select i.user_id from auth.identities i where i.email = lower(${email})))
    ) as taken`;
  return row.taken;
}

/** Serializes sign-ups and email changes to one address until the transaction ends. */
export async function lockEmail(db: Db, email: string): Promise<void> {
  await db`select pg_advisory_xact_lock(hashtextextended(${`auth.email:${email.toLowerCase()}`}, 0))`;
}

export type NewUser = {
  id?: string;
  email: string;
  /** Hashed here; null for a user without a password. */
  password: string | null;
  aud: string;
  role: string;
  userMetadata: Json;
  appMetadata: Json;
};

/** Inserts the user (its AFTER INSERT trigger creates the product's rows); returns its id. */
export async function insertUser(db: Db, user: NewUser): Promise<string> {
  const [row] = await db<{ id: string }[]>`
    insert into auth.users (instance_id, id, aud, role, email, encrypted_password, raw_app_meta_data,
                            raw_user_meta_data, created_at, updated_at, is_sso_user, is_anonymous)
    values (${INSTANCE_ID}, ${
    user.id ?? crypto.randomUUID()
  }, ${user.aud}, ${user.role}, ${user.email.toLowerCase()},
            case when ${user.password}::text is null then null
                 else extensions.crypt(${user.password}::text, extensions.gen_salt('bf', 10)) end,
            ${db.json(user.appMetadata as never)}, ${
    db.json(user.userMetadata as never)
  }, now(), now(), false, false)
    returning id`;
  return row.id;
}

export async function insertEmailIdentity(db: Db, userId: string, email: string, data: Json): Promise<void> {
  const identityData = { ...data, sub: userId, email: email.toLowerCase() };
  await db`
    insert into auth.identities (provider_id, user_id, identity_data, provider, last_sign_in_at, created_at, updated_at)
    values (${userId}, ${userId}, ${db.json(identityData as never)}, 'email', now(), now(), now())`;
}

/** Merges `patch` into the email identity's data (null removes a key). */
export async function updateEmailIdentity(db: Db, userId: string, patch: Json): Promise<void> {
  const { set, remove } = splitPatch(patch);
  await db`
    update auth.identities
       set identity_data = (identity_data || ${db.json(set as never)}) - ${remove}::text[], updated_at = now()
     where user_id = ${userId} and provider = 'email'`;
}

export async function setPassword(db: Db, userId: string, password: string): Promise<void> {
  await db`
    update auth.users
       set encrypted_password = extensions.crypt(${password}, extensions.gen_salt('bf', 10)), updated_at = now()
     where id = ${userId}`;
}

export async function setEmail(db: Db, userId: string, email: string): Promise<void> {
  await db`update auth.users set email = ${email.toLowerCase()}, updated_at = now() where id = ${userId}`;
}

export async function setRole(db: Db, userId: string, role: string): Promise<void> {
  await db`update auth.users set role = ${role}, updated_at = now() where id = ${userId}`;
}

/** Confirms the email now and records `email_verified: true` in the user metadata, as Auth's Confirm does. */
export async function confirmEmail(db: Db, userId: string): Promise<void> {
  await db`
    update auth.users
       set email_confirmed_at = now(), confirmation_token = '',
           raw_user_meta_data = coalesce(raw_user_meta_data, '{}') || '{"email_verified": true}', updated_at = now()
     where id = ${userId}`;
}

/** Bans until now + `seconds` (null or 0: lifts the ban). */
export async function setBan(db: Db, userId: string, seconds: number | null): Promise<void> {
  await db`
    update auth.users
       set banned_until = case when coalesce(${seconds}::float8, 0) = 0 then null
                               else now() + make_interval(secs => ${seconds}::float8) end,
           updated_at = now()
     where id = ${userId}`;
}

export async function mergeUserMetadata(db: Db, userId: string, patch: Json): Promise<void> {
  const { set, remove } = splitPatch(patch);
  await db`
    update auth.users
       set raw_user_meta_data = (coalesce(raw_user_meta_data, '{}') || ${
    db.json(set as never)
  }) - ${remove}::text[],
           updated_at = now()
     where id = ${userId}`;
}

export async function mergeAppMetadata(db: Db, userId: string, patch: Json): Promise<void> {
  const { set, remove } = splitPatch(patch);
  await db`
    update auth.users
       set raw_app_meta_data = (coalesce(raw_app_meta_data, '{}') || ${
    db.json(set as never)
  }) - ${remove}::text[],
           updated_at = now()
     where id = ${userId}`;
}

export async function recordSignIn(db: Db, userId: string): Promise<void> {
  await db`update auth.users set last_sign_in_at = now(), updated_at = now() where id = ${userId}`;
}

/** Deletes the user; the foreign keys cascade to its sessions, identities and the product's rows. */
export async function deleteUser(db: Db, userId: string): Promise<void> {
  await db`delete from auth.users where id = ${userId}`;
}

/**
 * Auth's soft delete: the row stays with deleted_at set, email and phone replaced by a hash, no password, empty
 * user metadata; identities emptied and their provider ids hashed; sessions ended.
 */
export async function softDeleteUser(db: Db, userId: string): Promise<void> {
  const [user] = await db<{ email: string | null; phone: string | null }[]>`
    select email, phone from auth.users where id = ${userId} for update`;
  if (!user) return;
  const email = user.email === null ? null : await obfuscated(userId + user.email);
  const phone = user.phone === null ? null : (await obfuscated(userId + user.phone)).slice(0, 15);
  await db`
    update auth.users
       set email = ${email}, phone = ${phone}, encrypted_password = null, confirmation_token = '',
           recovery_token = '', raw_user_meta_data = '{}', deleted_at = now(), updated_at = now()
     where id = ${userId}`;
  const identities = await db<{ id: string; provider: string; provider_id: string }[]>`
    select id, provider, provider_id from auth.identities where user_id = ${userId}`;
  for (const identity of identities) {
    const providerId = await obfuscated(`${userId}${identity.provider}:${identity.provider_id}`);
    await db`
      update auth.identities set identity_data = '{}', provider_id = ${providerId}, updated_at = now()
       where id = ${identity.id}`;
  }
  await db`delete from auth.sessions where user_id = ${userId}`;
}

/** Auth's obfuscation of erased values: unpadded base64url of their SHA-256. */
async function obfuscated(value: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(value)));
  return btoa(String.fromCharCode(...digest)).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
}

export type UserPage = { users: UserRecord[]; total: number };

/** A page of the audience's users, newest first; `filter` matches the email or user_metadata.full_name. */
export async function listUsers(
  db: Db,
  aud: string,
  page: { page: number; perPage: number },
  filter: string,
): Promise<UserPage> {
  const pattern = filter ? `%${filter}%` : null;
  const where = db`
    u.aud = ${aud}
    and (${pattern}::text is null or u.email like ${pattern} or u.raw_user_meta_data ->> 'full_name' ilike ${pattern})`;
  const [{ total }] = await db<
    { total: number }[]
  >`select count(*)::int as total from auth.users u where ${where}`;
  const users = await db<UserRecord[]>`
    select ${userColumns(db)} from auth.users u where ${where}
     order by u.created_at desc, u.id desc
     limit ${page.perPage} offset ${(page.page - 1) * page.perPage}`;
  return { users: [...users], total };
}

function splitPatch(patch: Json): { set: Json; remove: string[] } {
  const set: Json = {};
  const remove: string[] = [];
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) remove.push(key);
    else set[key] = value;
  }
  return { set, remove };
}
