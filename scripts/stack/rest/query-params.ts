// The query string as PostgREST reads it (ApiRequest/QueryParams.hs): select=, filters (`col=op.value`,
// `child.col=…`), or=/and= logic trees, order=, limit/offset (also per embed), columns=, on_conflict=, and, for
// a GET on a function, the arguments. Pure parsing: nothing here knows the schema. A value that does not
// parse is PGRST100, reported with the parameter, the column where parsing stopped, and what was expected.
import { ApiError } from "./errors.ts";

// ------------------------------------------------------------------------------------------- types
export type JsonOperation = { arrow: "->" | "->>"; key: string; isIndex: boolean };
export type Field = { name: string; jsonPath: JsonOperation[] };

export type JoinType = "inner" | "left";
export type SelectField = {
  kind: "field";
  field: Field; // name "*" for a star
  alias: string | null;
  cast: string | null;
  aggregate: string | null;
};
export type SelectRelation = {
  kind: "relation" | "spread";
  name: string;
  alias: string | null;
  hint: string | null;
  joinType: JoinType | null;
  children: SelectItem[];
};
export type SelectItem = SelectField | SelectRelation;

export type SimpleOperator = "neq" | "cs" | "cd" | "ov" | "sl" | "sr" | "nxr" | "nxl" | "adj";
export type QuantOperator = "eq" | "gte" | "gt" | "lte" | "lt" | "like" | "ilike" | "match" | "imatch";
export type FtsOperator = "fts" | "plfts" | "phfts" | "wfts";
export type IsValue = "null" | "not_null" | "true" | "false" | "unknown";
export type Operation =
  | { kind: "simple"; operator: SimpleOperator; value: string }
  | { kind: "quant"; operator: QuantOperator; quantifier: "any" | "all" | null; value: string }
  | { kind: "in"; values: string[] }
  | { kind: "is"; value: IsValue }
  | { kind: "isdistinct"; value: string }
  | { kind: "fts"; operator: FtsOperator; language: string | null; value: string };
export type OpExpr = { negated: boolean; operation: Operation };
export type Filter = { field: Field; expr: OpExpr };
export type LogicTree =
  | { kind: "expr"; negated: boolean; operator: "and" | "or"; children: LogicTree[] }
  | { kind: "stmt"; filter: Filter };

export type OrderDirection = "asc" | "desc";
export type OrderNulls = "nullsfirst" | "nullslast";
export type OrderTerm = {
  /** Set when ordering by a column of an embedded to-one resource: `order=client(name).desc`. */
  relation: string | null;
  field: Field;
  direction: OrderDirection | null;
  nulls: OrderNulls | null;
};

/** offset and limit (null: no limit), per embed path ("" is the top level). */
export type RowRange = { offset: number; limit: number | null };

export type QueryParams = {
  select: SelectItem[];
  filters: { path: string[]; filter: Filter }[];
  logic: { path: string[]; tree: LogicTree }[];
  order: { path: string[]; terms: OrderTerm[] }[];
  ranges: Map<string, RowRange>;
  columns: string[] | null;
  onConflict: string[] | null;
  /** Parameters that are not filters: a GET/HEAD function call's arguments. */
  rpcArgs: [string, string][];
};

// ------------------------------------------------------------------------------------------ cursor
class ParseFailure extends Error {
  constructor(readonly pos: number, readonly details: string) {
    super(details);
  }
}

const describe = (src: string, pos: number) => pos >= src.length ? "end of input" : JSON.stringify(src[pos]);

class Cursor {
  pos = 0;
  constructor(readonly src: string) {}
  get eof(): boolean {
    return this.pos >= this.src.length;
  }
  get ch(): string {
    return this.src[this.pos] ?? "";
  }
  at(s: string): boolean {
    return this.src.startsWith(s, this.pos);
  }
  eat(s: string): boolean {
    if (!this.at(s)) return false;
    this.pos += s.length;
    return true;
  }
  expect(s: string, what = JSON.stringify(s)): void {
    if (!this.eat(s)) this.fail(what);
  }
  fail(expecting: string): never {
    throw new ParseFailure(this.pos, `unexpected ${describe(this.src, this.pos)} expecting ${expecting}`);
  }
  /** Runs `f`; on failure restores the position and returns null (parsec's `try … <|>`). */
  attempt<T>(f: () => T): T | null {
    const start = this.pos;
    try {
      return f();
    } catch (e) {
      if (!(e instanceof ParseFailure)) throw e;
      this.pos = start;
      return null;
    }
  }
  skipSpaces(): void {
    while (this.ch === " " || this.ch === "\t") this.pos++;
  }
}

function parseWith<T>(what: string, value: string, f: (c: Cursor) => T): T {
  const c = new Cursor(value);
  try {
    return f(c);
  } catch (e) {
    if (!(e instanceof ParseFailure)) throw e;
    throw new ApiError(
      400,
      "PGRST100",
      `"failed to parse ${what} (${value})" (line 1, column ${e.pos + 1})`,
      e.details,
    );
  }
}

// ----------------------------------------------------------------------------------------- lexemes
const IDENT_CHAR = /[\p{L}\p{N}_ $]/u;

function quoted(c: Cursor): string {
  c.expect('"');
  let out = "";
  while (!c.eof && c.ch !== '"') {
    if (c.ch === "\\") c.pos++;
    out += c.ch;
    c.pos++;
  }
  c.expect('"', '"\\""');
  return out;
}

function identifier(c: Cursor, charOk: (ch: string) => boolean): string {
  const start = c.pos;
  while (!c.eof && charOk(c.ch)) c.pos++;
  if (c.pos === start) c.fail("field name (* or [a..z0..9_$])");
  return c.src.slice(start, c.pos).trim();
}

/** identifier ('-' identifier)*, where a '-' that starts '->' ends the name. */
function dashed(c: Cursor, charOk: (ch: string) => boolean): string {
  const parts = [identifier(c, charOk)];
  while (c.ch === "-" && c.src[c.pos + 1] !== ">") {
    c.pos++;
    parts.push(identifier(c, charOk));
  }
  return parts.join("-");
}

function fieldName(c: Cursor): string {
  if (c.ch === '"') return quoted(c);
  return dashed(c, (ch) => IDENT_CHAR.test(ch));
}

const JSON_KEY_CHAR = (ch: string) => !"(-:.,>)".includes(ch);

function jsonPath(c: Cursor): JsonOperation[] {
  const ops: JsonOperation[] = [];
  for (;;) {
    const arrow = c.eat("->>") ? "->>" : c.eat("->") ? "->" : null;
    if (!arrow) return ops;
    const index = c.attempt(() => {
      const m = c.src.slice(c.pos).match(/^-?[0-9]+/);
      if (!m) c.fail("digit");
      c.pos += m[0].length;
      const rest = c.src.slice(c.pos);
      if (
        !(rest === "" || rest.startsWith("->") || rest.startsWith("::") || rest[0] === "." || rest[0] === ",")
      ) {
        c.fail('"->", "::", ".", "," or end of input');
      }
      return m[0];
    });
    if (index !== null) ops.push({ arrow, key: index, isIndex: true });
    else {
      const k = c.ch === '"' ? quoted(c) : dashed(c, JSON_KEY_CHAR);
      ops.push({ arrow, key: k, isIndex: false });
    }
  }
}

function field(c: Cursor): Field {
  c.skipSpaces();
  const name = fieldName(c);
  const path = jsonPath(c);
  c.skipSpaces();
  return { name, jsonPath: path };
}

/** A cast or aggregate cast: letters, digits, '_', '$' and spaces (PostgREST's pIdentifier). */
function typeName(c: Cursor): string {
  return identifier(c, (ch) => IDENT_CHAR.test(ch));
}

// ------------------------------------------------------------------------------------------ select
const AGGREGATES = ["sum", "avg", "count", "max", "min"];

function atSelectEnd(c: Cursor): boolean {
  return c.eof || c.ch === ")" || c.ch === ",";
}

function aliasPrefix(c: Cursor): string | null {
  return c.attempt(() => {
    const a = fieldName(c);
    if (c.ch !== ":" || c.src[c.pos + 1] === ":") c.fail('":"');
    c.pos++;
    return a;
  });
}

function embedParams(c: Cursor): { hint: string | null; joinType: JoinType | null } {
  let hint: string | null = null;
  let joinType: JoinType | null = null;
  for (let i = 0; i < 2 && c.ch === "!"; i++) {
    c.pos++;
    const jt = c.attempt(() => {
      const word = c.eat("left") ? "left" : c.eat("inner") ? "inner" : null;
      if (!word || (c.ch !== "(" && c.ch !== "!")) c.fail('"("');
      return word as JoinType;
    });
    if (jt) joinType ??= jt;
    else hint ??= fieldName(c);
  }
  return { hint, joinType };
}

function relationSelect(c: Cursor): SelectRelation | null {
  return c.attempt(() => {
    c.skipSpaces();
    const spread = c.eat("...");
    const alias = spread ? null : aliasPrefix(c);
    const name = fieldName(c);
    if (!spread && name === "count") c.fail('"("');
    const { hint, joinType } = embedParams(c);
    if (c.ch !== "(") c.fail('"("');
    c.pos++;
    const children = selectForest(c);
    c.expect(")", '")" or ","');
    c.skipSpaces();
    return { kind: spread ? "spread" : "relation", name, alias, hint, joinType, children };
  });
}

function fieldSelect(c: Cursor): SelectField {
  c.skipSpaces();
  if (c.ch === "*") {
    c.pos++;
    c.skipSpaces();
    if (!atSelectEnd(c)) c.fail('")", "," or end of input');
    return { kind: "field", field: { name: "*", jsonPath: [] }, alias: null, cast: null, aggregate: null };
  }
  const alias = aliasPrefix(c);
  if (c.eat("count()")) {
    const aggCast = c.eat("::") ? typeName(c) : null;
    c.skipSpaces();
    if (!atSelectEnd(c)) c.fail('")", "," or end of input');
    return { kind: "field", field: { name: "*", jsonPath: [] }, alias, cast: aggCast, aggregate: "count" };
  }
  const f = field(c);
  const cast = c.eat("::") ? typeName(c) : null;
  let aggregate: string | null = null;
  if (c.ch === ".") {
    aggregate = c.attempt(() => {
      c.pos++;
      const agg = AGGREGATES.find((a) => c.eat(a));
      if (!agg || !c.eat("()")) c.fail("aggregate function");
      return agg;
    });
    if (c.eat("::")) typeName(c);
  }
  c.skipSpaces();
  if (!atSelectEnd(c)) c.fail('"->>", "->", "::", ".", ")", "," or end of input');
  return { kind: "field", field: f, alias, cast, aggregate };
}

function selectForest(c: Cursor): SelectItem[] {
  const items: SelectItem[] = [];
  c.skipSpaces();
  if (c.eof || c.ch === ")") return items;
  for (;;) {
    items.push(relationSelect(c) ?? fieldSelect(c));
    c.skipSpaces();
    if (!c.eat(",")) return items;
    c.skipSpaces();
  }
}

export function parseSelect(value: string): SelectItem[] {
  return parseWith("select parameter", value, (c) => {
    const items = selectForest(c);
    if (!c.eof) c.fail('"," or end of input');
    return items;
  });
}

// ----------------------------------------------------------------------------------------- filters
const SIMPLE: SimpleOperator[] = ["neq", "cs", "cd", "ov", "sl", "sr", "nxr", "nxl", "adj"];
const QUANT: QuantOperator[] = ["eq", "gte", "gt", "lte", "lt", "like", "ilike", "match", "imatch"];
const FTS: FtsOperator[] = ["fts", "plfts", "phfts", "wfts"];
const IS_VALUES: IsValue[] = ["null", "not_null", "true", "false", "unknown"];

function listValue(c: Cursor): string[] {
  c.skipSpaces();
  c.expect("(");
  c.skipSpaces();
  const values: string[] = [];
  for (;;) {
    const q = c.attempt(() => {
      const v = quoted(c);
      if (!(c.ch === "," || c.ch === ")")) c.fail('"," or ")"');
      return v;
    });
    if (q !== null) values.push(q);
    else {
      const start = c.pos;
      while (!c.eof && c.ch !== "," && c.ch !== ")") c.pos++;
      values.push(c.src.slice(start, c.pos));
    }
    if (!c.eat(",")) break;
  }
  c.skipSpaces();
  c.expect(")", '"," or ")"');
  c.skipSpaces();
  return values;
}

function opExpr(c: Cursor, singleValue: (c: Cursor) => string): OpExpr {
  const negated = c.attempt(() => {
    c.expect("not");
    c.expect(".");
    return true;
  }) ?? false;
  const operation = operationOf(c, singleValue);
  return { negated, operation };
}

function operationOf(c: Cursor, singleValue: (c: Cursor) => string): Operation {
  const expecting = "operator (eq, gt, ...)";
  const withDot = <T>(word: string, f: () => T): T | null =>
    c.attempt(() => {
      c.expect(word);
      c.expect(".", "delimiter (.)");
      return f();
    });
  const inList = withDot("in", () => ({ kind: "in" as const, values: listValue(c) }));
  if (inList) return inList;
  const isOp = withDot("is", () => {
    const rest = c.src.slice(c.pos).toLowerCase();
    const v = [...IS_VALUES].sort((a, b) => b.length - a.length).find((x) => rest.startsWith(x));
    if (!v) c.fail("isVal: (null, not_null, true, false, unknown)");
    c.pos += v.length;
    return { kind: "is" as const, value: v };
  });
  if (isOp) return isOp;
  const dist = withDot("isdistinct", () => ({ kind: "isdistinct" as const, value: singleValue(c) }));
  if (dist) return dist;
  const fts = c.attempt(() => {
    const op = FTS.find((o) => c.eat(o));
    if (!op) c.fail(expecting);
    let language: string | null = null;
    if (c.ch === "(") {
      c.pos++;
      language = typeName(c);
      c.expect(")");
    }
    c.expect(".", "delimiter (.)");
    return { kind: "fts" as const, operator: op, language, value: singleValue(c) };
  });
  if (fts) return fts;
  const simple = c.attempt(() => {
    const op = SIMPLE.find((o) => c.eat(o));
    if (!op) c.fail(expecting);
    c.expect(".", "delimiter (.)");
    return { kind: "simple" as const, operator: op, value: singleValue(c) };
  });
  if (simple) return simple;
  const quant = c.attempt(() => {
    const op = QUANT.find((o) =>
      c.at(o) && (c.src[c.pos + o.length] === "." || c.src[c.pos + o.length] === "(")
    );
    if (!op) c.fail(expecting);
    c.pos += op.length;
    let quantifier: "any" | "all" | null = null;
    if (c.eat("(any)")) quantifier = "any";
    else if (c.eat("(all)")) quantifier = "all";
    c.expect(".", "delimiter (.)");
    return { kind: "quant" as const, operator: op, quantifier, value: singleValue(c) };
  });
  if (quant) return quant;
  c.fail(expecting);
}

const restOfValue = (c: Cursor) => {
  const v = c.src.slice(c.pos);
  c.pos = c.src.length;
  return v;
};

export function parseFilterValue(value: string): OpExpr {
  return parseWith("filter", value, (c) => opExpr(c, restOfValue));
}

/** `a.b.col->x`: the embed path and the field. */
function treePath(c: Cursor): { path: string[]; field: Field } {
  const names = [fieldName(c)];
  while (c.eat(".")) names.push(fieldName(c));
  const path = jsonPath(c);
  if (!c.eof) c.fail('".", "->", "->>" or end of input');
  return { path: names.slice(0, -1), field: { name: names[names.length - 1], jsonPath: path } };
}

export function parseTreePath(key: string): { path: string[]; field: Field } {
  return parseWith("tree path", key, treePath);
}

// ------------------------------------------------------------------------------------------- logic
const logicValue = (c: Cursor): string => {
  const q = c.attempt(() => {
    const v = quoted(c);
    if (!(c.eof || c.ch === "," || c.ch === ")")) c.fail('"," or ")"');
    return v;
  });
  if (q !== null) return q;
  if (c.ch === "{") {
    const end = c.src.indexOf("}", c.pos);
    if (end >= 0 && !c.src.slice(c.pos + 1, end).includes("{")) {
      const v = c.src.slice(c.pos, end + 1);
      c.pos = end + 1;
      return v;
    }
  }
  const start = c.pos;
  while (!c.eof && c.ch !== "," && c.ch !== ")") c.pos++;
  return c.src.slice(start, c.pos);
};

function logicTree(c: Cursor): LogicTree {
  const stmt = c.attempt(() => {
    const f = field(c);
    c.expect(".", "delimiter (.)");
    return { kind: "stmt" as const, filter: { field: f, expr: opExpr(c, logicValue) } };
  });
  if (stmt) return stmt;
  const negated = c.attempt(() => {
    c.expect("not");
    c.expect(".");
    return true;
  }) ?? false;
  const operator = c.eat("and") ? "and" : c.eat("or") ? "or" : c.fail("logic operator (and, or)");
  c.skipSpaces();
  c.expect("(");
  c.skipSpaces();
  const children = [logicTree(c)];
  c.skipSpaces();
  while (c.eat(",")) {
    c.skipSpaces();
    children.push(logicTree(c));
    c.skipSpaces();
  }
  c.expect(")", '"," or ")"');
  c.skipSpaces();
  return { kind: "expr", negated, operator, children };
}

export function parseLogic(key: string, value: string): { path: string[]; tree: LogicTree } {
  const names = parseWith("logic path", key, (c) => {
    const ns = [fieldName(c)];
    while (c.eat(".")) ns.push(fieldName(c));
    return ns;
  });
  const op = names[names.length - 1];
  const negated = names.includes("not");
  const path = names.slice(0, -1).filter((n) => n !== "not");
  const tree = parseWith("logic tree", `${negated ? "not." : ""}${op}${value}`, (c) => logicTree(c));
  return { path, tree };
}

// ------------------------------------------------------------------------------------------- order
function orderTerm(c: Cursor): OrderTerm {
  c.skipSpaces();
  const relation = c.attempt(() => {
    const name = fieldName(c);
    c.expect("(");
    const f = field(c);
    c.expect(")");
    return { name, f };
  });
  const f = relation ? relation.f : field(c);
  const direction = c.attempt(() => {
    c.expect(".");
    if (c.eat("asc")) return "asc" as const;
    if (c.eat("desc")) return "desc" as const;
    return c.fail('"asc", "desc", "nullsfirst" or "nullslast"');
  });
  const nulls = c.attempt(() => {
    c.expect(".");
    if (c.eat("nullsfirst")) return "nullsfirst" as const;
    if (c.eat("nullslast")) return "nullslast" as const;
    return c.fail('"nullsfirst" or "nullslast"');
  });
  c.skipSpaces();
  if (!(c.eof || c.ch === ",")) {
    c.fail(direction || nulls ? '"," or end of input' : 'delimiter (.), "," or end of input');
  }
  return { relation: relation?.name ?? null, field: f, direction, nulls };
}

export function parseOrder(value: string): OrderTerm[] {
  return parseWith("order", value, (c) => {
    const terms = [orderTerm(c)];
    while (c.eat(",")) terms.push(orderTerm(c));
    return terms;
  });
}

export function parseColumns(what: string, value: string): string[] {
  return parseWith(`${what} parameter`, value, (c) => {
    const cols = [fieldName(c)];
    c.skipSpaces();
    while (c.eat(",")) {
      c.skipSpaces();
      cols.push(fieldName(c));
      c.skipSpaces();
    }
    if (!c.eof) c.fail('"," or end of input');
    return cols;
  });
}

// ----------------------------------------------------------------------------------- query string
/** key/value pairs of a raw query string, '+' as space; a key without '=' has no value (and is ignored). */
export function queryPairs(search: string): [string, string][] {
  const out: [string, string][] = [];
  for (const part of search.replace(/^\?/, "").split("&")) {
    if (part === "") continue;
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    const dec = (s: string) => {
      try {
        return decodeURIComponent(s.replace(/\+/g, " "));
      } catch {
        return s.replace(/\+/g, " ");
      }
    };
    out.push([dec(part.slice(0, eq)), dec(part.slice(eq + 1))]);
  }
  return out;
}

const RESERVED = new Set(["select", "columns", "on_conflict"]);
const RESERVED_ENDINGS = new Set(["order", "limit", "offset", "and", "or"]);
const lastSegment = (k: string) => k.split(".").pop() ?? k;

/** Haskell's `readMaybe :: Integer`: an optionally signed integer, surrounding spaces allowed. */
function readInteger(v: string): number | null {
  return /^\s*-?[0-9]+\s*$/.test(v) ? Number(v) : null;
}

/** Parses every parameter. `isRpcRead`: a GET/HEAD function call, whose non-filter parameters are arguments. */
export function parseQueryParams(search: string, isRpcRead: boolean): QueryParams {
  const pairs = queryPairs(search);
  const lookup = (k: string) => pairs.find(([key]) => key === k)?.[1];

  const select = parseSelect(lookup("select") ?? "*");
  const columnsParam = lookup("columns");
  const columns = columnsParam === undefined ? null : parseColumns("columns", columnsParam);
  const onConflictParam = lookup("on_conflict");
  const onConflict = onConflictParam === undefined ? null : parseColumns("on_conflict", onConflictParam);

  const order = pairs.filter(([k]) => lastSegment(k) === "order").map(([k, v]) => ({
    path: parseTreePath(k).path,
    terms: parseOrder(v),
  }));
  const logic = pairs.filter(([k]) => lastSegment(k) === "and" || lastSegment(k) === "or")
    .map(([k, v]) => parseLogic(k, v));

  const ranges = new Map<string, RowRange>();
  const rangeOf = (path: string) => ranges.get(path) ?? { offset: 0, limit: null };
  for (const [k, v] of pairs) {
    const end = lastSegment(k);
    if (end !== "limit" && end !== "offset") continue;
    const path = parseTreePath(k).path.join(".");
    const n = readInteger(v);
    if (n === null) continue; // PostgREST ignores a limit or offset that is not a number
    const r = rangeOf(path);
    ranges.set(path, end === "limit" ? { ...r, limit: n } : { ...r, offset: n });
  }

  const filters: QueryParams["filters"] = [];
  const rpcArgs: [string, string][] = [];
  for (const [k, v] of pairs) {
    if (RESERVED.has(k) || RESERVED_ENDINGS.has(lastSegment(k))) continue;
    const { path, field } = parseTreePath(k);
    if (isRpcRead) {
      const expr = (() => {
        try {
          return parseFilterValue(v);
        } catch {
          return null;
        }
      })();
      if (expr === null) rpcArgs.push([k, v]);
      else filters.push({ path, filter: { field, expr } });
    } else {
      filters.push({ path, filter: { field, expr: parseFilterValue(v) } });
    }
  }
  return { select, filters, logic, order, ranges, columns, onConflict, rpcArgs };
}
