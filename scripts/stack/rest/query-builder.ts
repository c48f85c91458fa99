// SQL for a read tree, built as PostgREST builds it (QueryBuilder.hs, SqlFragment.hs): one SELECT per level,
// embeds as LEFT (or INNER) JOIN LATERAL subqueries, rows rendered to JSON in SQL. Identifiers come from the
// plan (catalog names, or fixed internal aliases) and are always quoted; every value from the request, JSON
// keys and aliases included, is a bound parameter.
import type { FieldRef, OutputEntry, PlannedFilter, PlannedLogic, PlannedOrder, ReadNode } from "./plan.ts";
import type { Operation } from "./query-params.ts";
import { isToOne } from "./relationships.ts";
import type { QualifiedName } from "./schema-cache.ts";

/** A statement under construction: its parameters, bound in order. */
export class SqlBuilder {
  readonly params: unknown[] = [];
  /** Binds a value; `cast` (catalog SQL) is appended as `::cast`. */
  param(value: unknown, cast?: string): string {
    this.params.push(value);
    return `$${this.params.length}${cast ? `::${cast}` : ""}`;
  }
}

/** A quoted identifier (names come from the catalog or are the builder's own). */
export const ident = (name: string) => `"${name.replace(/\0/g, "").replace(/"/g, '""')}"`;
export const qualified = (q: QualifiedName) => `${ident(q.schema)}.${ident(q.name)}`;

/** A PostgreSQL array literal of text values (PostgREST's pgBuildArrayLiteral), bound as one parameter. */
export function arrayLiteral(values: string[]): string {
  const esc = (v: string) => `"${v.replace(/\0.*$/s, "").replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
  return `{${values.map(esc).join(",")}}`;
}

// ------------------------------------------------------------------------------------------ fields
export function fieldSql(b: SqlBuilder, ref: string, f: FieldRef): string {
  let sql = `${ident(ref)}.${ident(f.column.name)}`;
  if (f.jsonPath.length === 0) return sql;
  if (f.toJson) sql = `to_jsonb(${sql})`;
  for (const op of f.jsonPath) {
    sql += op.arrow + (op.isIndex ? b.param(op.key, "int") : b.param(op.key, "text"));
  }
  return sql;
}

const castSql = (expr: string, cast: QualifiedName | null) =>
  cast ? `CAST(${expr} AS ${qualified(cast)})` : expr;

/** A JSON object from (key, value) pairs, keys bound; over 50 pairs (json_build_object's limit) as text. */
export function jsonObject(b: SqlBuilder, pairs: [string, string][]): string {
  if (pairs.length <= 50) {
    return `json_build_object(${pairs.map(([k, v]) => `${b.param(k, "text")}, ${v}`).join(", ")})`;
  }
  const parts = pairs.map(([k, v]) =>
    `to_json(${b.param(k, "text")})::text || ':' || coalesce(to_json(${v})::text, 'null')`
  );
  return `('{' || ${parts.join(" || ',' || ")} || '}')::json`;
}

// ----------------------------------------------------------------------------------------- filters
const SIMPLE_SQL = {
  neq: "<>",
  cs: "@>",
  cd: "<@",
  ov: "&&",
  sl: "<<",
  sr: ">>",
  nxr: "&<",
  nxl: "&>",
  adj: "-|-",
};
const QUANT_SQL = {
  eq: "=",
  gte: ">=",
  gt: ">",
  lte: "<=",
  lt: "<",
  like: "like",
  ilike: "ilike",
  match: "~",
  imatch: "~*",
};
const FTS_SQL = {
  fts: "to_tsquery",
  plfts: "plainto_tsquery",
  phfts: "phraseto_tsquery",
  wfts: "websearch_to_tsquery",
};
const IS_SQL = { null: "NULL", not_null: "NOT NULL", true: "TRUE", false: "FALSE", unknown: "UNKNOWN" };

function operationSql(b: SqlBuilder, field: FieldRef, col: string, op: Operation): string {
  switch (op.kind) {
    case "simple":
      return `${col} ${SIMPLE_SQL[op.operator]} ${b.param(op.value)}`;
    case "quant": {
      const isLike = op.operator === "like" || op.operator === "ilike";
      const value = isLike ? op.value.replace(/\*/g, "%") : op.value;
      const rhs = op.quantifier ? `${op.quantifier.toUpperCase()}(${b.param(value)})` : b.param(value);
      return `${col} ${QUANT_SQL[op.operator]} ${rhs}`;
    }
    case "in":
      if (op.values.length === 1 && op.values[0] === "") return `${col} = ANY('{}')`;
      return `${col} = ANY(${b.param(arrayLiteral(op.values))})`;
    case "is":
      return `${col} IS ${IS_SQL[op.value]}`;
    case "isdistinct":
      return `${col} IS DISTINCT FROM ${b.param(op.value)}`;
    case "fts": {
      const lang = op.language === null ? "" : `${b.param(op.language)}, `;
      const target = field.column.baseType === "tsvector" ? col : `to_tsvector(${lang}${col})`;
      return `${target} @@ ${FTS_SQL[op.operator]}(${lang}${b.param(op.value)})`;
    }
  }
}

/** How a filter on an embed (`child=is.null`) is written: in the read itself, or in the count query. */
export type EmbedNullSql = (b: SqlBuilder, child: ReadNode, negated: boolean) => string;

export const embedNullInRead: EmbedNullSql = (_b, child, negated) =>
  `${ident(child.aggAlias)}.${ident("pgrst_exists")} IS ${negated ? "NOT " : ""}NULL`;

function filterSql(b: SqlBuilder, ref: string, f: PlannedFilter, embedNull: EmbedNullSql): string {
  if (f.kind === "embed-null") return embedNull(b, f.child, f.negated);
  const sql = operationSql(b, f.field, fieldSql(b, ref, f.field), f.expr.operation);
  return f.expr.negated ? `NOT (${sql})` : sql;
}

export function logicSql(b: SqlBuilder, ref: string, t: PlannedLogic, embedNull: EmbedNullSql): string {
  if (t.kind === "stmt") return filterSql(b, ref, t.filter, embedNull);
  const inner = t.children.map((c) => logicSql(b, ref, c, embedNull)).join(
    t.operator === "and" ? " AND " : " OR ",
  );
  return `${t.negated ? "NOT " : ""}(${inner})`;
}

// ------------------------------------------------------------------------------------ order, range
function orderSql(b: SqlBuilder, ref: string, order: PlannedOrder[]): string {
  if (order.length === 0) return "";
  const terms = order.map((o) => {
    const expr = o.kind === "field"
      ? fieldSql(b, ref, o.field)
      : `${ident(o.child.aggAlias)}.${ident(o.exportName)}`;
    const dir = o.direction ? ` ${o.direction.toUpperCase()}` : "";
    const nulls = o.nulls === "nullsfirst" ? " NULLS FIRST" : o.nulls === "nullslast" ? " NULLS LAST" : "";
    return `${expr}${dir}${nulls}`;
  });
  return ` ORDER BY ${terms.join(", ")}`;
}

function rangeSql(b: SqlBuilder, node: ReadNode): string {
  const { offset, limit } = node.range;
  if (limit === null && offset === 0) return "";
  return ` LIMIT ${limit === null ? "ALL" : b.param(String(limit), "bigint")} OFFSET ${
    b.param(String(offset), "bigint")
  }`;
}

// ------------------------------------------------------------------------------------------ levels
/** The (key, SQL value) pairs of a level's output, evaluated in its scope (spreads flattened in). */
function entryValues(b: SqlBuilder, node: ReadNode): [string, string][] {
  const out: [string, string][] = [];
  for (const e of node.entries) out.push(...entryValue(b, node, e));
  return out;
}

function entryValue(b: SqlBuilder, node: ReadNode, e: OutputEntry): [string, string][] {
  if (e.kind === "field") return [[e.key, castSql(fieldSql(b, node.ref, e.field), e.cast)]];
  const agg = ident(e.child.aggAlias);
  const toOne = e.child.rel !== null && isToOne(e.child.rel);
  if (e.kind === "embed") {
    return [[
      e.key,
      toOne ? `${agg}.${ident("pgrst_row")}` : `COALESCE(${agg}.${ident("pgrst_agg")}, '[]'::jsonb)`,
    ]];
  }
  return spreadKeys(e.child).map((key, i) => {
    const col = `${agg}.${ident(`pgrst_spread_${i + 1}`)}`;
    return [key, toOne ? col : `COALESCE(${col}, '[]'::jsonb)`];
  });
}

/** The output keys of a spread level (its own and those of spreads inside it). */
function spreadKeys(node: ReadNode): string[] {
  return node.entries.flatMap((e) => e.kind === "spread" ? spreadKeys(e.child) : [e.key]);
}

/** WHERE conditions joining a child level to its parent. */
function joinConditions(child: ReadNode, parentRef: string): { from: string; conds: string[] } {
  const rel = child.rel!;
  const childFrom = `${qualified(rel.foreignTable)} AS ${ident(child.ref)}`;
  if (rel.cardinality === "many-to-many" && rel.junction) {
    const j = rel.junction;
    const jt = qualified(j.table);
    return {
      from: `${childFrom}, ${jt}`,
      conds: [
        ...j.targetColumns.map(([tc, jc]) => `${ident(child.ref)}.${ident(tc)} = ${jt}.${ident(jc)}`),
        ...j.sourceColumns.map(([sc, jc]) => `${jt}.${ident(jc)} = ${ident(parentRef)}.${ident(sc)}`),
      ],
    };
  }
  return {
    from: childFrom,
    conds: rel.columns.map(([pc, cc]) =>
      `${ident(child.ref)}.${ident(cc)} = ${ident(parentRef)}.${ident(pc)}`
    ),
  };
}

export type LevelOptions = {
  /** The FROM item (with its alias), e.g. `"public"."users" AS "users"`. */
  from: string;
  /** Extra WHERE conditions (the join to the parent). */
  conds: string[];
  /** What the level selects: its JSON row, or its values one column each (spreads). */
  shape: "row" | "spread";
  /** Also select the row as record text, for CSV (the top level only). */
  csv?: boolean;
  /** Select `true AS pgrst_exists` (a to-one embed: NULL after the LEFT JOIN when there is no row). */
  exists?: boolean;
};

/** SELECT … FROM … LATERAL joins … WHERE … ORDER BY … LIMIT … for one level. */
export function levelQuery(b: SqlBuilder, node: ReadNode, opts: LevelOptions): string {
  const joins = node.children.map((c) => lateralJoin(b, node, c));
  const values = entryValues(b, node);
  const select: string[] = opts.exists ? [`true AS ${ident("pgrst_exists")}`] : [];
  // Embedded rows are jsonb, as PostgREST makes them (row_to_json(…)::jsonb); the top level's are json.
  if (opts.shape === "row") {
    const row = node.depth > 0 ? `${jsonObject(b, values)}::jsonb` : jsonObject(b, values);
    select.push(`${row} AS ${ident("pgrst_row")}`);
  } else values.forEach(([, v], i) => select.push(`${v} AS ${ident(`pgrst_spread_${i + 1}`)}`));
  if (opts.csv) select.push(`ROW(${values.map(([, v]) => v).join(", ")})::text AS ${ident("pgrst_csv")}`);
  for (const o of node.orderExports) select.push(`${fieldSql(b, node.ref, o.field)} AS ${ident(o.name)}`);
  if (select.length === 0) select.push(`true AS ${ident("pgrst_exists")}`);
  const where = [...node.where.map((w) => logicSql(b, node.ref, w, embedNullInRead)), ...opts.conds];
  return `SELECT ${select.join(", ")} FROM ${opts.from}${joins.join("")}` +
    (where.length ? ` WHERE ${where.join(" AND ")}` : "") +
    orderSql(b, node.ref, node.order) + rangeSql(b, node);
}

function lateralJoin(b: SqlBuilder, parent: ReadNode, child: ReadNode): string {
  const { from, conds } = joinConditions(child, parent.ref);
  const toOne = child.rel !== null && isToOne(child.rel);
  const agg = ident(child.aggAlias);
  const shape = child.isSpread ? "spread" : "row";
  const inner = child.joinType === "inner";
  let sub: string;
  if (toOne) {
    sub = levelQuery(b, child, { from, conds, shape: child.isEmpty ? "spread" : shape, exists: true });
  } else {
    const q = levelQuery(b, child, { from, conds, shape: child.isEmpty ? "spread" : shape });
    const s = ident("pgrst_sub");
    const aggs = child.isEmpty ? [] : child.isSpread
      ? spreadKeys(child).map((_, i) => {
        const c = ident(`pgrst_spread_${i + 1}`);
        return `json_agg(${s}.${c})::jsonb AS ${c}`;
      })
      : [`json_agg(${s}.${ident("pgrst_row")})::jsonb AS ${ident("pgrst_agg")}`];
    sub = `SELECT ${[...aggs, `bool_or(true) AS ${ident("pgrst_exists")}`].join(", ")} FROM (${q}) AS ${s}`;
  }
  const on = inner && !toOne ? `${agg}.${ident("pgrst_exists")}` : "TRUE";
  return ` ${inner ? "INNER" : "LEFT"} JOIN LATERAL (${sub}) AS ${agg} ON ${on}`;
}

// ------------------------------------------------------------------------------------------- count
/** SELECT 1 FROM … WHERE …: what a count counts (no embeds but those that filter: inner joins, is.null). */
export function countQuery(b: SqlBuilder, node: ReadNode, from: string, conds: string[]): string {
  const embedNull: EmbedNullSql = (bb, child, negated) => {
    const { from: cf, conds: cc } = joinConditions(child, node.ref);
    return `${negated ? "" : "NOT "}EXISTS (${countQuery(bb, child, cf, cc)})`;
  };
  const where = [
    ...node.where.map((w) => logicSql(b, node.ref, w, embedNull)),
    ...conds,
    ...node.children.filter((c) => c.joinType === "inner").map((c) => {
      const { from: cf, conds: cc } = joinConditions(c, node.ref);
      return `EXISTS (${countQuery(b, c, cf, cc)})`;
    }),
  ];
  return `SELECT 1 FROM ${from}${where.length ? ` WHERE ${where.join(" AND ")}` : ""}`;
}
