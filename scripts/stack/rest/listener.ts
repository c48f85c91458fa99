// PostgREST's listener: LISTEN pgrst on a connection of its own. `NOTIFY pgrst, 'reload schema'` (or an empty
// payload, or 'reload config') rebuilds the schema cache. When the connection drops (the database restarted,
// or was dropped and recreated by db:reset) it reconnects with backoff and rebuilds the cache once back.
import postgres from "npm:postgres@3.4.9";
import { log } from "./log.ts";

export type ListenerEvents = {
  /** A reload was asked for (payload) or the listener (re)connected. */
  onReload: (reason: string) => void;
};

const CHANNEL = "pgrst";

export class Listener {
  #sql: postgres.Sql | null = null;
  #stopped = false;
  #delayMs = 250;
  #connecting = false;

  constructor(private readonly url: string, private readonly events: ListenerEvents) {}

  start(): void {
    void this.#connect();
  }

  /** The request path saw the database go away: reconnect now rather than at the next failure. */
  nudge(): void {
    if (!this.#connecting && this.#sql === null) void this.#connect();
  }

  async #connect(): Promise<void> {
    if (this.#connecting || this.#stopped) return;
    this.#connecting = true;
    while (!this.#stopped) {
      const sql = postgres(this.url, {
        max: 1,
        idle_timeout: 0,
        max_lifetime: 0,
        connect_timeout: 5,
        onnotice: () => {},
        connection: { application_name: "rest stand-in (PostgREST listener)" },
        onclose: () => this.#closed(sql),
        // postgres.js delivers NOTIFY messages of its connections here (the option its own listen() uses).
        ...({ onnotify: (channel: string, payload: string) => this.#notified(channel, payload) } as object),
      });
      try {
        await sql.unsafe(`listen ${CHANNEL}`);
        this.#sql = sql;
        this.#delayMs = 250;
        log("info", "listening for schema reloads", { channel: CHANNEL });
        this.#connecting = false;
        this.events.onReload("listener connected");
        return;
      } catch (e) {
        await sql.end({ timeout: 0 }).catch(() => {});
        log("warn", "listener cannot connect; retrying", {
          error: String((e as Error).message ?? e),
          retryMs: this.#delayMs,
        });
        await new Promise((r) => setTimeout(r, this.#delayMs));
        this.#delayMs = Math.min(this.#delayMs * 2, 5_000);
      }
    }
    this.#connecting = false;
  }

  #closed(sql: postgres.Sql): void {
    if (this.#sql !== sql) return;
    this.#sql = null;
    void sql.end({ timeout: 0 }).catch(() => {});
    if (this.#stopped) return;
    log("warn", "listener connection lost; reconnecting");
    void this.#connect();
  }

  #notified(channel: string, payload: string): void {
    if (channel !== CHANNEL) return;
    const p = payload.trim();
    if (p === "" || p === "reload schema" || p === "reload config") this.events.onReload(`notify '${p}'`);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    const sql = this.#sql;
    this.#sql = null;
    if (sql) await sql.end({ timeout: 0 }).catch(() => {});
  }
}
