// bench:db's tables (Markdown, as the README shows them).
import type { Stats } from "./measure.ts";

export const TARGET_P95_MS = 2;
export const TARGET_FLOOR_RATIO = 10;

const ms = (x: number) => x.toFixed(2);
const ratio = (a: number, b: number) => `${(a / b).toFixed(1)}×`;

export type SeedRow = {
  key: string;
  name: string;
  concurrency: number;
  ours: Stats;
  audited: Stats;
  oursFloor: Stats;
  auditedFloor: Stats;
};

/** What a row must meet: p95 at most `p95Ms`, and (when given) at most `floorRatio` times the floor's p95. */
export type Target = { p95Ms: number; floorRatio?: number };
/** The seed's operations (issue 12): p95 ≤ 2 ms and ≤ 10× the floor. */
export const SEED_TARGET: Target = { p95Ms: TARGET_P95_MS, floorRatio: TARGET_FLOOR_RATIO };

/** Ours next to the as-audited design and each cluster's floor, with the target column. */
export function seedTable(rows: SeedRow[], target: Target = SEED_TARGET): { text: string; misses: string[] } {
  const misses: string[] = [];
  const lines = [
    "| operation | c | ours p50 ms | p95 | p99 | ÷ floor p50 / p95 | as-audited p50 ms | p95 | p99 | runs | " +
    "as-audited ÷ ours p95 | target |",
    "| --- | -: | -: | -: | -: | -: | -: | -: | -: | -: | -: | --- |",
  ];
  for (const r of rows) {
    const floorRatio = r.ours.p95 / r.oursFloor.p95;
    const met = r.ours.p95 <= target.p95Ms &&
      (target.floorRatio === undefined || floorRatio <= target.floorRatio);
    if (!met) misses.push(`${r.name} at c=${r.concurrency}`);
    lines.push(
      `| ${r.name} | ${r.concurrency} | ${ms(r.ours.p50)} | ${ms(r.ours.p95)} | ${ms(r.ours.p99)} | ` +
        `${ratio(r.ours.p50, r.oursFloor.p50)} / ${ratio(r.ours.p95, r.oursFloor.p95)} | ` +
        `${ms(r.audited.p50)} | ${ms(r.audited.p95)} | ${
          ms(r.audited.p99)
        } | ${r.ours.runs} / ${r.audited.runs} | ` +
        `${ratio(r.audited.p95, r.ours.p95)} | ${met ? "met" : "**not met**"} |`,
    );
  }
  return { text: lines.join("\n"), misses };
}

export type RestRow = { name: string; concurrency: number; sql: Stats; service: Stats; http: Stats };

/** The Data API stand-in's own cost: the same call by SQL, to the stand-in directly and through the gateway. */
export function restTable(rows: RestRow[]): string {
  const lines = [
    "| operation | c | SQL p50 ms | SQL p95 | SQL p99 | stand-in p50 ms | p95 | /rest/v1 p50 ms | p95 | p99 | " +
    "HTTP ÷ SQL (p50) | SQL/s | HTTP/s |",
    "| --- | -: | -: | -: | -: | -: | -: | -: | -: | -: | -: | -: | -: |",
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.name} | ${r.concurrency} | ${ms(r.sql.p50)} | ${ms(r.sql.p95)} | ${ms(r.sql.p99)} | ` +
        `${ms(r.service.p50)} | ${ms(r.service.p95)} | ${ms(r.http.p50)} | ${ms(r.http.p95)} | ` +
        `${ms(r.http.p99)} | ${ratio(r.http.p50, r.sql.p50)} | ${Math.round(r.sql.perSecond)} | ` +
        `${Math.round(r.http.perSecond)} |`,
    );
  }
  return lines.join("\n");
}

export type LoadRow = {
  name: string;
  connections: number;
  requestsPerSecond: number;
  p50: number;
  p99: number;
  requests: number;
  non2xx: number;
  errors: number;
};

/** The marketplace endpoint under autocannon. */
export function loadTable(rows: LoadRow[]): string {
  const lines = [
    "| GET /functions/v1/marketplace | connections | req/s | p50 ms | p99 ms | requests | non-2xx | errors |",
    "| --- | -: | -: | -: | -: | -: | -: | -: |",
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.name} | ${r.connections} | ${
        Math.round(r.requestsPerSecond)
      } | ${r.p50} | ${r.p99} | ${r.requests} | ` +
        `${r.non2xx} | ${r.errors} |`,
    );
  }
  return lines.join("\n");
}
