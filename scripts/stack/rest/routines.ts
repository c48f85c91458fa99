// Which function an RPC means (PostgREST's findProc): overloads are told apart by the names of the arguments
// given (all required parameters present, the rest optional ones); a single unnamed json/jsonb parameter
// takes the whole JSON body when no named overload matches. None → PGRST202, several → PGRST203.
import { ambiguousFunction, noFunction } from "./errors.ts";
import { closest } from "./fuzzy.ts";
import { key, type Routine, type SchemaCache } from "./schema-cache.ts";

export type CallKind = {
  isPost: boolean;
  contentType: "json" | "text" | "xml" | "octet" | "other";
  /** Prefer: params=single-object (PostgREST 12): only a function with one json/jsonb parameter matches. */
  singleObject: boolean;
};

const SINGLE_TYPES: Record<CallKind["contentType"], string[]> = {
  json: ["json", "jsonb"],
  text: ["text"],
  xml: ["xml"],
  octet: ["bytea"],
  other: [],
};

/** Whether the whole body goes to the function as its one argument (params=single-object, PostgREST 12). */
export const takesSingleObject = (r: Routine, call: CallKind) =>
  call.singleObject && r.params.length === 1 && ["json", "jsonb"].includes(r.params[0].type);

function matchesArgs(r: Routine, args: Set<string>, call: CallKind): boolean {
  if (call.singleObject) return takesSingleObject(r, call);
  if (r.params.length === 0) {
    return args.size === 0 && !(call.isPost && ["octet", "text", "xml"].includes(call.contentType));
  }
  const required = new Set(r.params.filter((p) => p.required).map((p) => p.name));
  const optional = new Set(r.params.filter((p) => !p.required).map((p) => p.name));
  const given = [...args].filter((a) => !optional.has(a));
  return given.length === required.size && given.every((a) => required.has(a));
}

export const isSingleUnnamed = (r: Routine) => r.params.length === 1 && r.params[0].name === "";

function takesRawBody(r: Routine, call: CallKind): boolean {
  return call.isPost && isSingleUnnamed(r) && SINGLE_TYPES[call.contentType].includes(r.params[0].type);
}

const signature = (r: Routine) =>
  `${r.schema}.${r.name}(${r.params.map((p) => `${p.name} => ${p.type}`).join(", ")})`;

function notFound(
  cache: SchemaCache,
  schema: string,
  name: string,
  args: string[],
  call: CallKind,
  overloads: Routine[],
) {
  const func = `${schema}.${name}`;
  const onlySingle = call.isPost && ["text", "xml", "octet"].includes(call.contentType);
  const prms = args.join(", ");
  const withParams = args.length === 0
    ? " without parameters"
    : ` with parameter${args.length > 1 ? "s" : ""} ${prms}`;
  const message = `Could not find the function ${func}${
    onlySingle ? "" : args.length === 0 ? " without parameters" : `(${prms})`
  } in the schema cache`;
  const details = `Searched for the function ${func}${
    call.isPost && call.contentType === "text"
      ? " with a single unnamed text parameter"
      : call.isPost && call.contentType === "xml"
      ? " with a single unnamed xml parameter"
      : call.isPost && call.contentType === "octet"
      ? " with a single unnamed bytea parameter"
      : call.isPost && call.contentType === "json"
      ? `${withParams} or with a single unnamed json/jsonb parameter`
      : withParams
  }, but no matches were found in the schema cache.`;
  let hint: string | null = null;
  if (!onlySingle) {
    if (overloads.length === 0) {
      const names = [...cache.routines.keys()].filter((k) => k.startsWith(`${schema}.`)).map((k) =>
        k.slice(schema.length + 1)
      );
      const s = closest(name, names);
      if (s) hint = `Perhaps you meant to call the function ${schema}.${s}`;
    } else {
      const asText = (names: string[]) => `(${[...names].sort().join(", ")})`;
      const s = closest(asText(args), overloads.map((o) => asText(o.params.map((p) => p.name))));
      if (s) hint = `Perhaps you meant to call the function ${schema}.${name}${s}`;
    }
  }
  return noFunction(message, details, hint);
}

export function findRoutine(
  cache: SchemaCache,
  schema: string,
  name: string,
  argNames: string[],
  call: CallKind,
): Routine {
  const overloads = cache.routines.get(key(schema, name)) ?? [];
  const args = new Set(argNames);
  const named = overloads.filter((r) => matchesArgs(r, args, call));
  const fallback = overloads.filter((r) => !matchesArgs(r, args, call) && takesRawBody(r, call));
  if (named.length === 1) return named[0];
  if (named.length > 1) throw ambiguousFunction(named.map(signature));
  if (fallback.length === 1) return fallback[0];
  if (fallback.length > 1) throw ambiguousFunction(fallback.map(signature));
  throw notFound(cache, schema, name, argNames, call, overloads);
}
