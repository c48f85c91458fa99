// A run's steps, stored write-behind: each step's write (private.record_agent_step, one durable commit) is sent the
// moment the step ends, and the writes go one after another, so the steps are numbered in the order they ended.
// The loop does not wait for a write before its next step (a model call's step would otherwise wait for its own
// usage settlement to commit, since both take the run's row): it waits for all of them before the run's end is
// written (finish_agent_run), so a run that ended has every step it took, and a run whose worker died has every
// step whose write committed (at most the last one or two, which ended within milliseconds, are missing; their
// calls are billed all the same, by their own settlements). The first write that fails fails the run.
import { recordStep, type RunSignals, type StepRecord } from "./start.ts";

export class StepWriter {
  #tail: Promise<void> = Promise.resolve();
  #failure: { error: unknown } | null = null;
  /** The run's cost billed so far, as the last write read it (a call settled through the outbox included). */
  costTokens = 0;

  /**
   * `onCancel` is called when a write finds that the user asked to cancel the run; `record` stores one step (the
   * tests pass their own).
   */
  constructor(
    readonly runId: string,
    readonly onCancel: () => void,
    readonly record: (runId: string, step: StepRecord) => Promise<RunSignals> = recordStep,
  ) {}

  /** Sends the step's write now, after the writes before it. */
  write(step: StepRecord): void {
    this.#tail = this.#tail.then(async () => {
      if (this.#failure) return;
      try {
        const signals = await this.record(this.runId, step);
        this.costTokens = Math.max(this.costTokens, signals.cost_tokens);
        if (signals.cancel_requested) this.onCancel();
      } catch (error) {
        this.#failure = { error };
      }
    });
  }

  /** Throws the error of the first write that failed, if one did. */
  check(): void {
    if (this.#failure) throw this.#failure.error;
  }

  /** Waits for every write sent; throws the first failure. */
  async drain(): Promise<void> {
    await this.#tail;
    this.check();
  }
}
