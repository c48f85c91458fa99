// A run's stream of typed events, each with its sequence_number (1, 2, …): what the SSE answer sends, what a
// reconnecting client replays. Live subscribers get each event as it is emitted; the events are also written to
// public.agent_run_events in batches (every FLUSH_MS, and at once at step ends and at the end), so a client of
// another instance, or one that comes back later, replays them from the database.
import { db } from "../_shared/platform/db.ts";
import type { Logger } from "../_shared/platform/log.ts";

export type RunEventType =
  | "run.created"
  | "run.in_progress"
  | "message.delta"
  | "tool_call.started"
  | "tool_call.completed"
  | "run.completed"
  | "run.incomplete"
  | "run.failed"
  | "run.cancelled"
  | "run.expired"
  | "done";

export type RunEvent = { type: RunEventType; sequence_number: number; [field: string]: unknown };

/** The events that end a run's stream: after `done` nothing follows. */
export const isTerminal = (type: string) => type === "done";

const FLUSH_MS = 200;

export class RunEvents {
  readonly #runId: string;
  readonly #log: Logger;
  readonly #all: RunEvent[] = [];
  #unsaved: RunEvent[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #saving: Promise<void> = Promise.resolve();
  readonly #subscribers = new Set<(event: RunEvent) => void>();

  constructor(runId: string, log: Logger, startAfter = 0) {
    this.#runId = runId;
    this.#log = log;
    this.#next = startAfter + 1;
  }
  #next: number;

  /** Emits an event to the live subscribers and queues it for the database. */
  emit(type: RunEventType, data: Record<string, unknown> = {}): RunEvent {
    const event: RunEvent = { ...data, type, sequence_number: this.#next++ };
    this.#all.push(event);
    this.#unsaved.push(event);
    for (const s of this.#subscribers) s(event);
    this.#timer ??= setTimeout(() => void this.flush(), FLUSH_MS);
    return event;
  }

  /** Writes what is not written yet; resolves once it is (a failure is logged: the live stream still has it). */
  flush(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const batch = this.#unsaved;
    this.#unsaved = [];
    if (batch.length > 0) {
      const rows = batch.map(({ type, sequence_number, ...data }) => ({ type, sequence_number, data }));
      this.#saving = this.#saving.then(() =>
        db()`select private.append_agent_run_events(${this.#runId}, ${db().json(rows as never)})`.then(
          () => {},
          (e) =>
            this.#log.error("run events not stored", { error: e instanceof Error ? e.message : String(e) }),
        )
      );
    }
    return this.#saving;
  }

  /** Events after `after`, then every new one as it comes; returns the unsubscribe. */
  subscribe(after: number, onEvent: (event: RunEvent) => void): () => void {
    for (const e of this.#all) if (e.sequence_number > after) onEvent(e);
    this.#subscribers.add(onEvent);
    return () => this.#subscribers.delete(onEvent);
  }

  get last(): number {
    return this.#next - 1;
  }
}

/** One event as SSE: `event: <type>` and the event as JSON data. */
export function sseFrame(event: RunEvent): string {
  return `event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`;
}
