// Keeps the schema cache current: built at start, rebuilt on demand (NOTIFY pgrst, SIGHUP, after the database
// came back). Reloads never overlap: one asked for while another runs is done right after it. A failed load
// keeps the cache there was (none at first: requests get 503 PGRST002) and is retried with backoff.
import type postgres from "npm:postgres@3.4.9";
import type { RestConfig } from "./config.ts";
import { log } from "./log.ts";
import { loadSchemaCache, type SchemaCache } from "./schema-cache.ts";

export class CacheLoader {
  #cache: SchemaCache | null = null;
  #running: Promise<void> | null = null;
  #again = false;
  #retry: ReturnType<typeof setTimeout> | undefined;
  #delayMs = 250;
  #stopped = false;

  constructor(private readonly sql: () => postgres.Sql, private readonly config: RestConfig) {}

  get current(): SchemaCache | null {
    return this.#cache;
  }

  /** Seconds until the next retry (for Retry-After on 503s). */
  get retryAfterSeconds(): number {
    return Math.ceil(this.#delayMs / 1000);
  }

  /** Rebuilds the cache (coalescing concurrent requests); resolves when the rebuild asked for is done. */
  reload(reason: string): Promise<void> {
    if (this.#running) {
      this.#again = true;
      return this.#running;
    }
    this.#running = this.#run(reason).finally(() => {
      this.#running = null;
      if (this.#again && !this.#stopped) {
        this.#again = false;
        void this.reload(`${reason} (again)`);
      }
    });
    return this.#running;
  }

  async #run(reason: string): Promise<void> {
    const started = performance.now();
    try {
      this.#cache = await loadSchemaCache(this.sql(), this.config);
      this.#delayMs = 250;
      clearTimeout(this.#retry);
      log("info", "schema cache loaded", {
        reason,
        ms: Math.round(performance.now() - started),
        tables: this.#cache.tables.size,
        relationships: [...this.#cache.relationships.values()].reduce((n, r) => n + r.length, 0),
        functions: this.#cache.routines.size,
      });
    } catch (e) {
      log("warn", "schema cache load failed; retrying", {
        reason,
        error: String((e as Error).message ?? e),
        retryMs: this.#delayMs,
      });
      clearTimeout(this.#retry);
      if (!this.#stopped) this.#retry = setTimeout(() => void this.reload("retry"), this.#delayMs);
      this.#delayMs = Math.min(this.#delayMs * 2, 5_000);
    }
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#retry);
  }
}
