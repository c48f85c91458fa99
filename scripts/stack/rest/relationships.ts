// Which relationship an embed means (PostgREST's findRel): `target` is a table or view name, a foreign key
// constraint name or a foreign key column; an optional `!hint` (constraint, column, referenced column or
// junction table) narrows it. None → PGRST200, several → PGRST201, with PostgREST's details and hints.
import { closest } from "./fuzzy.ts";
import { ambiguousRelationship, noRelationship, type RelationshipSummary } from "./errors.ts";
import { key, type Relationship, type SchemaCache } from "./schema-cache.ts";

export const isToOne = (r: Relationship) => r.cardinality === "many-to-one" || r.cardinality === "one-to-one";

const singleColumn = (r: Relationship) => r.columns.length === 1 ? r.columns[0] : null;

function matches(r: Relationship, target: string, hint: string | null): boolean {
  const col = singleColumn(r);
  const fkCol = col?.[0];
  const refCol = col?.[1];
  if (r.isSelf) {
    if (hint === null) {
      return (target === r.foreignTable.name && r.cardinality === "one-to-many") ||
        (fkCol === target && r.cardinality === "many-to-one");
    }
    return target === r.foreignTable.name && r.cardinality === "one-to-many" && refCol === hint;
  }
  if (hint === null) {
    return target === r.foreignTable.name ||
      (r.cardinality !== "many-to-many" && r.constraint === target) ||
      (r.cardinality !== "many-to-many" && fkCol === target);
  }
  return target === r.foreignTable.name && (
    (r.cardinality !== "many-to-many" && (r.constraint === hint || fkCol === hint || refCol === hint)) ||
    (r.cardinality === "many-to-many" && r.junction?.table.name === hint)
  );
}

function summary(r: Relationship): RelationshipSummary {
  const cols = (cs: string[]) => `(${cs.join(", ")})`;
  const embedding = `${r.table.name} with ${r.foreignTable.name}`;
  if (r.cardinality === "many-to-many" && r.junction) {
    const j = r.junction;
    return {
      cardinality: "many-to-many",
      embedding,
      relationship: `${j.table.name} using ${j.sourceConstraint}${
        cols(j.sourceColumns.map(([, c]) => c))
      } and ${j.targetConstraint}${cols(j.targetColumns.map(([, c]) => c))}`,
      hint: `'${r.foreignTable.name}!${j.table.name}'`,
    };
  }
  return {
    cardinality: r.cardinality,
    embedding,
    relationship: `${r.constraint} using ${r.table.name}${
      cols(r.columns.map(([c]) => c))
    } and ${r.foreignTable.name}${cols(r.columns.map(([, c]) => c))}`,
    hint: `'${r.foreignTable.name}!${r.constraint}'`,
  };
}

/** PostgREST's "Perhaps you meant …" for a missing relationship. */
function suggestion(cache: SchemaCache, schema: string, origin: string, target: string): string | null {
  const rels = cache.relationships.get(key(schema, origin));
  if (rels) {
    const candidates = rels.filter((r) => r.foreignTable.schema === schema).map((r) => r.foreignTable.name);
    if (candidates.includes(target)) return null;
    const s = closest(target, candidates);
    return s ? `Perhaps you meant '${s}' instead of '${target}'.` : null;
  }
  const origins = [...cache.relationships.keys()].filter((k) => k.startsWith(`${schema}.`)).map((k) =>
    k.slice(schema.length + 1)
  );
  const s = closest(origin, origins);
  return s ? `Perhaps you meant '${s}' instead of '${origin}'.` : null;
}

export function findRelationship(
  cache: SchemaCache,
  schema: string,
  origin: string,
  target: string,
  hint: string | null,
): Relationship {
  const candidates = (cache.relationships.get(key(schema, origin)) ?? [])
    .filter((r) => r.foreignTable.schema === schema)
    .filter((r) => matches(r, target, hint));
  if (candidates.length === 1) return candidates[0];
  if (candidates.length === 0) {
    throw noRelationship(origin, target, hint, schema, suggestion(cache, schema, origin, target));
  }
  throw ambiguousRelationship(origin, target, candidates.map(summary));
}
