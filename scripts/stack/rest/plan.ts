// Resolves a parsed request against the schema cache (PostgREST's Plan.hs): the read tree (select items,
// embeds with their relationships and aliases, filters, logic trees, order and ranges per level), and for
// writes and calls what to write or call. Every identifier the SQL will use comes from here, i.e. from the
// catalog; a name the cache does not know is an error PostgREST (or PostgreSQL behind it) would also give.
import {
  aggregatesNotAllowed,
  ApiError,
  columnNotFound,
  notEmbedded,
  relatedOrderNotToOne,
  undefinedColumn,
  undefinedType,
} from "./errors.ts";
import type {
  Field,
  Filter,
  JoinType,
  JsonOperation,
  LogicTree,
  OpExpr,
  OrderDirection,
  OrderNulls,
  OrderTerm,
  QueryParams,
  RowRange,
  SelectItem,
} from "./query-params.ts";
import { findRelationship, isToOne } from "./relationships.ts";
import type { QualifiedName, Relationship, SchemaCache, Table } from "./schema-cache.ts";

// ------------------------------------------------------------------------------------------- types
export type ColumnInfo = { name: string; dataType: string; baseType: string };

/** What a level of the read reads from: a table or view, or the CTE of a write or a function call. */
export type Relation = {
  /** The name PostgREST uses for it in errors and as the origin of embeds (table or function name). */
  label: string;
  /** Where relationships are looked up from (the table, or the table a function returns rows of). */
  origin: QualifiedName;
  columns: Map<string, ColumnInfo>;
  /** Column order for `*`. */
  columnOrder: string[];
};

export type FieldRef = {
  column: ColumnInfo;
  jsonPath: JsonOperation[];
  /** A JSON path on a column that is not json/jsonb goes through to_jsonb(). */
  toJson: boolean;
};

export type OutputEntry =
  | { kind: "field"; key: string; field: FieldRef; cast: QualifiedName | null }
  | { kind: "embed"; key: string; child: ReadNode }
  | { kind: "spread"; child: ReadNode };

export type PlannedFilter =
  | { kind: "filter"; field: FieldRef; expr: OpExpr }
  | { kind: "embed-null"; child: ReadNode; negated: boolean };
export type PlannedLogic =
  | { kind: "expr"; negated: boolean; operator: "and" | "or"; children: PlannedLogic[] }
  | { kind: "stmt"; filter: PlannedFilter };
export type PlannedOrder =
  | { kind: "field"; field: FieldRef; direction: OrderDirection | null; nulls: OrderNulls | null }
  | {
    kind: "related";
    child: ReadNode;
    exportName: string;
    direction: OrderDirection | null;
    nulls: OrderNulls | null;
  };

export type ReadNode = {
  relation: Relation;
  /**
   * The SQL alias of this level's FROM item: the table (or function) name at the top, a name of the builder's
   * own below (`pgrst_1`, …), unique in the whole query, so no level can shadow another.
   */
  ref: string;
  /** What PostgreSQL would call this level in an error, as PostgREST names it (`<table>_<depth>` below the top). */
  label: string;
  depth: number;
  relName: string;
  relAlias: string | null;
  relHint: string | null;
  joinType: JoinType | null;
  /** The relationship to the parent (null at the top). */
  rel: Relationship | null;
  /** The alias of the lateral join that brings this level into its parent. */
  aggAlias: string;
  isSpread: boolean;
  /** `child()`: embedded for filtering only, nothing of it in the output. */
  isEmpty: boolean;
  entries: OutputEntry[];
  children: ReadNode[];
  where: PlannedLogic[];
  order: PlannedOrder[];
  range: RowRange;
  /** Columns this level hands its parent for `order=child(col)`. */
  orderExports: { name: string; field: FieldRef }[];
};

// ------------------------------------------------------------------------------- relations & fields
export function tableRelation(t: Table): Relation {
  const cols = [...t.columns.values()].sort((a, b) => a.position - b.position);
  return {
    label: t.name,
    origin: { schema: t.schema, name: t.name },
    columns: new Map(cols.map((c) => [c.name, { name: c.name, dataType: c.dataType, baseType: c.baseType }])),
    columnOrder: cols.map((c) => c.name),
  };
}

const JSON_TYPES = new Set(["json", "jsonb"]);

/** Planning errors come first; the first unknown column (PostgreSQL's error at run time) is kept for last. */
export class Planner {
  deferred: ApiError | null = null;
  constructor(readonly cache: SchemaCache, readonly schema: string, readonly aggregatesEnabled = false) {}

  defer(e: ApiError): void {
    this.deferred ??= e;
  }

  field(relation: Relation, f: Field, label = relation.label): FieldRef {
    const column = relation.columns.get(f.name);
    if (!column) {
      this.defer(undefinedColumn(label, f.name));
      return {
        column: { name: f.name, dataType: "text", baseType: "text" },
        jsonPath: f.jsonPath,
        toJson: false,
      };
    }
    const isJson = JSON_TYPES.has(column.baseType) || JSON_TYPES.has(column.dataType);
    return { column, jsonPath: f.jsonPath, toJson: f.jsonPath.length > 0 && !isJson };
  }

  castType(name: string): QualifiedName | null {
    const t = this.cache.types.get(name.trim().toLowerCase());
    if (!t) this.defer(undefinedType(name.trim()));
    return t ?? null;
  }
}

/** The key a select item gets in the output (PostgREST's addAliases). */
function outputKey(name: string, alias: string | null, path: JsonOperation[]): string {
  if (alias !== null) return alias;
  if (path.length === 0) return name;
  const last = path[path.length - 1];
  if (!last.isIndex) return last.key;
  const lastKey = [...path].reverse().find((p) => !p.isIndex);
  return lastKey ? lastKey.key : name;
}

// ------------------------------------------------------------------------------------- read tree
type Skeleton = {
  relName: string;
  relAlias: string | null;
  relHint: string | null;
  joinType: JoinType | null;
  isSpread: boolean;
  depth: number;
  items: SelectItem[];
  children: Skeleton[];
  filters: Filter[];
  logic: LogicTree[];
  order: OrderTerm[] | null;
  range: RowRange | null;
};

function skeleton(items: SelectItem[], relName: string, depth: number, embed?: SelectItem): Skeleton {
  const rel = embed && embed.kind !== "field" ? embed : null;
  return {
    relName,
    relAlias: rel?.alias ?? null,
    relHint: rel?.hint ?? null,
    joinType: rel?.joinType ?? null,
    isSpread: rel?.kind === "spread",
    depth,
    items,
    children: items.filter((i) => i.kind !== "field").map((i) =>
      skeleton((i as { children: SelectItem[] }).children, (i as { name: string }).name, depth + 1, i)
    ),
    filters: [],
    logic: [],
    order: null,
    range: null,
  };
}

/** The node a `child.grandchild.` path names (by embed name or alias), or PGRST108. */
function nodeAt(root: Skeleton, path: string[]): Skeleton {
  let node = root;
  for (const name of path) {
    const next = node.children.find((c) => c.relName === name || c.relAlias === name);
    if (!next) throw notEmbedded(name);
    node = next;
  }
  return node;
}

function attachParams(root: Skeleton, q: QueryParams, opts: { rootFilters: boolean; ranges: boolean }): void {
  for (const { path, filter } of q.filters) {
    if (path.length === 0 && !opts.rootFilters) continue;
    nodeAt(root, path).filters.push(filter);
  }
  for (const { path, terms } of q.order) nodeAt(root, path).order = terms;
  if (opts.ranges) {
    for (const [path, range] of q.ranges) nodeAt(root, path === "" ? [] : path.split(".")).range = range;
  }
  for (const { path, tree } of q.logic) {
    if (path.length === 0 && !opts.rootFilters) continue;
    nodeAt(root, path).logic.push(tree);
  }
}

/** The relation an embed reads: the foreign table of its relationship (a table or view of the schema). */
function foreignRelation(cache: SchemaCache, rel: Relationship): Relation {
  const t = cache.tables.get(`${rel.foreignTable.schema}.${rel.foreignTable.name}`);
  if (!t) {
    throw new ApiError(500, "PGRSTX00", `relationship target ${rel.foreignTable.name} is not in the cache`);
  }
  return tableRelation(t);
}

type BuildContext = { planner: Planner; maxRows: number | null; levels: number };

function buildNode(
  ctx: BuildContext,
  sk: Skeleton,
  relation: Relation,
  names: { ref: string; label: string; aggAlias: string },
  rel: Relationship | null,
): ReadNode {
  const { planner } = ctx;
  const { ref, label, aggAlias } = names;
  const node: ReadNode = {
    relation,
    ref,
    label,
    depth: sk.depth,
    relName: sk.relName,
    relAlias: sk.relAlias,
    relHint: sk.relHint,
    joinType: sk.joinType,
    rel,
    aggAlias,
    isSpread: sk.isSpread,
    isEmpty: false,
    entries: [],
    children: [],
    where: [],
    order: [],
    range: restrictRange(sk.range ?? { offset: 0, limit: null }, ctx.maxRows),
    orderExports: [],
  };
  // Embeds: resolve each relationship (PGRST200/201), then build the child level.
  const childNodes = new Map<Skeleton, ReadNode>();
  for (const csk of sk.children) {
    const found = findRelationship(
      planner.cache,
      planner.schema,
      relation.origin.name,
      csk.relName,
      csk.relHint,
    );
    const childRel = foreignRelation(planner.cache, found);
    const n = ++ctx.levels;
    const child = buildNode(ctx, csk, childRel, {
      ref: `pgrst_${n}`,
      label: `${found.foreignTable.name}_${csk.depth}`,
      aggAlias: `pgrst_agg_${n}`,
    }, found);
    childNodes.set(csk, child);
    node.children.push(child);
  }
  node.isEmpty = sk.depth > 0 && !sk.isSpread && sk.items.length === 0 &&
    node.children.every((c) => c.isEmpty);
  // Select items, in order (nothing selected at all means `*`, except for an embed used only to filter).
  const star = sk.items.length === 0 && sk.children.length === 0 && !node.isEmpty;
  const items: SelectItem[] = star
    ? [{ kind: "field", field: { name: "*", jsonPath: [] }, alias: null, cast: null, aggregate: null }]
    : sk.items;
  let childIndex = 0;
  for (const item of items) {
    if (item.kind === "field") {
      if (item.aggregate !== null && !planner.aggregatesEnabled) throw aggregatesNotAllowed();
      if (item.field.name === "*") {
        for (const name of relation.columnOrder) {
          node.entries.push({
            kind: "field",
            key: name,
            field: planner.field(relation, { name, jsonPath: [] }, labelOf(node)),
            cast: null,
          });
        }
        continue;
      }
      node.entries.push({
        kind: "field",
        key: outputKey(item.field.name, item.alias, item.field.jsonPath),
        field: planner.field(relation, item.field, labelOf(node)),
        cast: item.cast === null ? null : planner.castType(item.cast),
      });
      continue;
    }
    const child = childNodes.get(sk.children[childIndex++])!;
    if (child.isSpread) node.entries.push({ kind: "spread", child });
    else if (!child.isEmpty) {
      node.entries.push({ kind: "embed", key: child.relAlias ?? child.relName, child });
    }
  }
  // Filters and logic trees of this level.
  for (const f of sk.filters) node.where.push({ kind: "stmt", filter: plannedFilter(planner, node, f) });
  for (const t of sk.logic) node.where.push(plannedLogic(planner, node, t));
  // Order of this level, including by columns of embedded to-one resources.
  for (const term of sk.order ?? []) node.order.push(plannedOrder(planner, node, term));
  return node;
}

/** The name PostgreSQL would use for this level in an error (its FROM alias, or the table at the top). */
const labelOf = (node: ReadNode) => node.label;

function embedNamed(node: ReadNode, name: string): ReadNode | undefined {
  return node.children.find((c) => c.relName === name || c.relAlias === name);
}

function plannedFilter(planner: Planner, node: ReadNode, f: Filter): PlannedFilter {
  if (f.field.jsonPath.length === 0 && f.expr.operation.kind === "is" && f.expr.operation.value === "null") {
    const child = embedNamed(node, f.field.name);
    if (child) return { kind: "embed-null", child, negated: f.expr.negated };
  }
  return { kind: "filter", field: planner.field(node.relation, f.field, labelOf(node)), expr: f.expr };
}

function plannedLogic(planner: Planner, node: ReadNode, t: LogicTree): PlannedLogic {
  if (t.kind === "stmt") return { kind: "stmt", filter: plannedFilter(planner, node, t.filter) };
  return {
    kind: "expr",
    negated: t.negated,
    operator: t.operator,
    children: t.children.map((c) => plannedLogic(planner, node, c)),
  };
}

function plannedOrder(planner: Planner, node: ReadNode, term: OrderTerm): PlannedOrder {
  if (term.relation === null) {
    return {
      kind: "field",
      field: planner.field(node.relation, term.field, labelOf(node)),
      direction: term.direction,
      nulls: term.nulls,
    };
  }
  const child = embedNamed(node, term.relation);
  if (!child) throw notEmbedded(term.relation);
  if (!child.rel || !isToOne(child.rel)) {
    throw relatedOrderNotToOne(node.relation.label, child.relAlias ?? child.relName);
  }
  const exportName = `pgrst_order_${child.orderExports.length + 1}`;
  child.orderExports.push({
    name: exportName,
    field: planner.field(child.relation, term.field, child.label),
  });
  return { kind: "related", child, exportName, direction: term.direction, nulls: term.nulls };
}

/** max_rows caps every level (PostgREST's treeRestrictRange); limit=0 stays 0. */
function restrictRange(r: RowRange, maxRows: number | null): RowRange {
  if (r.offset < 0) throw new ApiError(400, "2201X", "OFFSET must not be negative");
  if (r.limit !== null && r.limit < 0) throw new ApiError(400, "2201W", "LIMIT must not be negative");
  if (maxRows === null) return r;
  return { offset: r.offset, limit: r.limit === null ? maxRows : Math.min(r.limit, maxRows) };
}

export type ReadPlanOptions = {
  /** Root filters belong to the read (GET, calls) or to the write itself (PATCH/DELETE). */
  rootFilters: boolean;
  /** Ranges and max_rows apply to reads and calls, not to writes. */
  ranges: boolean;
  topRange: RowRange;
  maxRows: number | null;
};

export type ReadPlan = { root: ReadNode; deferred: ApiError | null };

export function planRead(
  cache: SchemaCache,
  schema: string,
  relation: Relation,
  q: QueryParams,
  opts: ReadPlanOptions,
): { plan: ReadPlan; planner: Planner } {
  const planner = new Planner(cache, schema);
  const root = skeleton(q.select, relation.label, 0);
  attachParams(root, q, { rootFilters: opts.rootFilters, ranges: opts.ranges });
  if (opts.ranges) root.range = opts.topRange;
  const ctx = { planner, maxRows: opts.ranges ? opts.maxRows : null, levels: 0 };
  const names = { ref: relation.label, label: relation.label, aggAlias: "" };
  const node = buildNode(ctx, root, relation, names, null);
  return { plan: { root: node, deferred: planner.deferred }, planner };
}

/** Root filters and logic trees of a PATCH/DELETE, resolved against the table itself. */
export function planRootWhere(planner: Planner, relation: Relation, q: QueryParams): PlannedLogic[] {
  const holder: ReadNode = {
    relation,
    ref: relation.label,
    label: relation.label,
    depth: 0,
    relName: relation.label,
    relAlias: null,
    relHint: null,
    joinType: null,
    rel: null,
    aggAlias: "",
    isSpread: false,
    isEmpty: false,
    entries: [],
    children: [],
    where: [],
    order: [],
    range: { offset: 0, limit: null },
    orderExports: [],
  };
  const where: PlannedLogic[] = [];
  for (const { path, filter } of q.filters) {
    if (path.length === 0) {
      where.push({
        kind: "stmt",
        filter: { kind: "filter", field: planner.field(relation, filter.field), expr: filter.expr },
      });
    }
  }
  for (const { path, tree } of q.logic) {
    if (path.length === 0) where.push(plannedLogic(planner, holder, tree));
  }
  return where;
}

// ------------------------------------------------------------------------------------------ writes
export type WriteColumn = ColumnInfo & { default: string | null };

/** The body's columns, each a column of the table, or PGRST204. */
export function writeColumns(table: Table, names: string[]): WriteColumn[] {
  return names.map((n) => {
    const c = table.columns.get(n);
    if (!c) throw columnNotFound(table.name, n);
    return { name: c.name, dataType: c.dataType, baseType: c.baseType, default: c.default };
  });
}

/** The columns RETURNING must hand the read of a write's results (PostgREST's inferColsEmbedNeeds). */
export function returningColumns(root: ReadNode, pk: string[]): string[] | "*" {
  const names = new Set<string>();
  for (const e of root.entries) if (e.kind === "field") names.add(e.field.column.name);
  for (const child of root.children) {
    for (const [col] of child.rel?.junction ? child.rel.junction.sourceColumns : child.rel?.columns ?? []) {
      names.add(col);
    }
  }
  for (const o of root.order) if (o.kind === "field") names.add(o.field.column.name);
  for (const c of pk) names.add(c);
  if (root.relation.columnOrder.length > 0 && root.relation.columnOrder.every((c) => names.has(c))) {
    return "*";
  }
  return [...names].filter((n) => root.relation.columns.has(n));
}
