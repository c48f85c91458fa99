// What the endpoints that generate no tokens share (embeddings, token counts): they never stream, and a count
// costs nothing. An endpoint describes its call with requestedMaxOutput 0 (admission then holds and counts no
// output: admission/hold.ts maxOutputOf); a count also says `free`, so it holds nothing at all.
import type { Described, StreamMeter } from "./adapter.ts";

/** These endpoints never stream; a stream meter is only there to satisfy the interface (it sees no events). */
export const noStream = (): StreamMeter => ({
  onEvent: (e) => e,
  usage: () => null,
  final: () => false,
  outputBytes: () => 0,
});

/** An embedding call: input only, billed at the model's input price (its output price is 0). */
export const describeEmbedding = (model: string): Described => ({
  model,
  stream: false,
  requestedMaxOutput: 0,
  choices: 1,
  inputUnbounded: false,
});

/** A token count: free, so it is limited only by the requests-per-minute limit and its usage row has no tokens. */
export const describeCount = (model: string): Described => ({ ...describeEmbedding(model), free: true });
