// The committed SHA-256 of every migration and down script, in supabase/migrations.sha256 (sha256sum's format,
// paths relative to supabase/, so `cd supabase && sha256sum -c migrations.sha256` checks them too). A landed
// migration never changes: the guard (scripts/test/schema_guards_test.ts) fails when one differs from its line.
//
//   npm run db:seal                 adds lines for files not listed yet (npm run db:diff does it for its files)
//   npm run db:seal -- <version>    re-records one migration and its down: only before it has landed (after its
//                                   data section was edited); the changed line shows in review
import { createHash } from "node:crypto";
import { join, relative } from "node:path";
import { migrationFiles, MIGRATIONS, ROOT } from "./scratch.ts";

export const CHECKSUMS = join(ROOT, "supabase", "migrations.sha256");
const SUPABASE = join(ROOT, "supabase");

/** Every migration and its down script, as paths relative to supabase/, in version order. */
export async function sealedFiles(): Promise<string[]> {
  const files: string[] = [];
  for (const name of await migrationFiles()) {
    files.push(relative(SUPABASE, join(MIGRATIONS, name)));
    files.push(relative(SUPABASE, join(MIGRATIONS, "down", name.replace(/\.sql$/, ".down.sql"))));
  }
  return files;
}

export async function sha256(file: string): Promise<string> {
  return createHash("sha256").update(await Deno.readFile(join(SUPABASE, file))).digest("hex");
}

/** The recorded checksums: path (relative to supabase/) → hex digest. */
export async function recordedChecksums(): Promise<Map<string, string>> {
  const text = await Deno.readTextFile(CHECKSUMS).catch(() => "");
  const recorded = new Map<string, string>();
  for (const line of text.split("\n")) {
    const m = line.match(/^([0-9a-f]{64}) {2}(\S+)$/);
    if (m) recorded.set(m[2], m[1]);
  }
  return recorded;
}

/** Records the files not listed yet, and re-records those of `versions`. */
export async function seal(versions: string[] = []): Promise<string[]> {
  const recorded = await recordedChecksums();
  const changed: string[] = [];
  for (const file of await sealedFiles()) {
    const version = file.match(/(\d{14})_/)![1];
    if (recorded.has(file) && !versions.includes(version)) continue;
    const digest = await sha256(file);
    if (recorded.get(file) !== digest) changed.push(file);
    recorded.set(file, digest);
  }
  const order = await sealedFiles();
  const lines = [...recorded].filter(([f]) => order.includes(f))
    .sort(([a], [b]) => order.indexOf(a) - order.indexOf(b))
    .map(([f, d]) => `${d}  ${f}`);
  await Deno.writeTextFile(CHECKSUMS, lines.join("\n") + "\n");
  return changed;
}

if (import.meta.main) {
  const versions = Deno.args;
  const bad = versions.filter((v) => !/^\d{14}$/.test(v));
  if (bad.length) {
    console.error("usage: npm run db:seal [-- <14-digit version> ...]");
    Deno.exit(2);
  }
  const changed = await seal(versions);
  console.log(changed.length ? changed.map((f) => `sealed ${f}`).join("\n") : "nothing to seal");
}
