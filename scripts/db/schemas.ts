// supabase/schemas/: the declared schema, the source of truth for every schema object. Its files are applied in
// the order `[db.migrations] schema_paths` in supabase/config.toml gives, expanded exactly as the Supabase CLI
// does (each pattern relative to supabase/, its matches sorted, duplicates dropped, a pattern matching nothing
// an error), so `supabase db diff` on a machine with Docker and `npm run db:diff` here read the same files in the
// same order.
import { join, relative } from "node:path";
import { psql, ROOT } from "./scratch.ts";

const SUPABASE = join(ROOT, "supabase");
const CONFIG = join(SUPABASE, "config.toml");

/** The `schema_paths` patterns of config.toml's `[db.migrations]` table, in order. */
export async function schemaPaths(configFile = CONFIG): Promise<string[]> {
  const toml = await Deno.readTextFile(configFile);
  const section = toml.split(/^\[db\.migrations\]\s*$/m)[1]?.split(/^\[/m)[0];
  const array = section?.match(/^schema_paths\s*=\s*\[([\s\S]*?)\]/m)?.[1];
  if (array === undefined) throw new Error(`${configFile}: no [db.migrations] schema_paths`);
  return [...array.replace(/#.*$/gm, "").matchAll(/"([^"]+)"/g)].map((m) => m[1]);
}

/** Whether one path segment matches one glob segment (`*`, `?` and literal characters, as Go's path.Match). */
function segmentMatches(pattern: string, name: string): boolean {
  const re = new RegExp(
    "^" + pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, "[^/]*").replace(/\?/g, "[^/]") + "$",
  );
  return re.test(name);
}

async function expand(dir: string, segments: string[]): Promise<string[]> {
  const [head, ...rest] = segments;
  if (head === undefined) return [dir];
  if (head === "." || head === "") return await expand(dir, rest);
  const found: string[] = [];
  if (!/[*?]/.test(head)) {
    const path = join(dir, head);
    const stat = await Deno.stat(path).catch(() => null);
    if (stat && (rest.length === 0 ? stat.isFile : stat.isDirectory)) found.push(...await expand(path, rest));
    return found;
  }
  for await (const entry of Deno.readDir(dir)) {
    if (!segmentMatches(head, entry.name)) continue;
    if (rest.length === 0 ? entry.isFile : entry.isDirectory) {
      found.push(...await expand(join(dir, entry.name), rest));
    }
  }
  return found;
}

/** The declared schema's files (absolute paths) in the order they are applied. */
export async function schemaFiles(configFile = CONFIG): Promise<string[]> {
  const files: string[] = [];
  for (const pattern of await schemaPaths(configFile)) {
    const matches = (await expand(SUPABASE, pattern.split("/"))).sort();
    if (matches.length === 0) throw new Error(`config.toml schema_paths: no files match ${pattern}`);
    for (const file of matches) if (!files.includes(file)) files.push(file);
  }
  return files;
}

/** The schema files under supabase/schemas/ that no schema_paths pattern names (so they would never apply). */
export async function unlistedSchemaFiles(): Promise<string[]> {
  const listed = new Set(await schemaFiles());
  const all: string[] = [];
  const walk = async (dir: string) => {
    for await (const e of Deno.readDir(dir)) {
      const path = join(dir, e.name);
      if (e.isDirectory) await walk(path);
      else if (!listed.has(path)) all.push(relative(ROOT, path));
    }
  };
  await walk(join(SUPABASE, "schemas"));
  return all.sort();
}

/**
 * Applies the declared schema to a database with the platform bootstrap (a scratch one): every file in order, in
 * one transaction, with check_function_bodies off (as pg_dump and pg-delta apply DDL), so a SQL function may name
 * an object declared in a later file.
 */
export async function applySchemas(url: string): Promise<void> {
  await psql(url, { files: await schemaFiles(), options: "-c check_function_bodies=off" });
}
