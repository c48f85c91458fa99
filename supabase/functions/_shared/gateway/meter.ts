// Metering what the provider delivered, on each way a forwarded call can end, and settling it by that:
//   unreachable / timed out / left before the headers  the input estimate if it may have read the prompt, else
//                                                      nothing (and the 504/503/502)
//   an error answer                                    nothing; its own error, as it sent it
//   a JSON answer                                      its usage, else its generated text (else its bytes)
//   a stream                                           passed through as it arrives, metered on the way; settled
//                                                      when it ends or the client leaves
import { HttpError } from "../http/errors.ts";
import type { Logger } from "../platform/log.ts";
import { type CallState, usageRecord } from "./billed.ts";
import { abortedBy, type UpstreamCall } from "./forward.ts";
import { shuttingDown } from "./instance.ts";
import { type ProviderAdapter, type StreamMeter, type Usage, utf8Bytes } from "./providers/adapter.ts";
import { encodeEvent, SseSplitter } from "./providers/sse.ts";
import type { Settle } from "./settle.ts";

/** One call forwarded upstream: what it is metered and settled with. */
export type Forwarded = {
  adapter: ProviderAdapter;
  req: Request;
  log: Logger;
  call: CallState;
  upstream: UpstreamCall;
  settle: Settle;
};

/** The upstream call failed before its headers: settles what the provider may have read, returns the error. */
export function upstreamFailed(f: Forwarded, e: unknown): HttpError {
  const { adapter, call, upstream } = f;
  upstream.done();
  const why = abortedBy(upstream);
  const timedOut = why === "timeout";
  const cancelled = f.req.signal.aborted || why === "client" || why === "shutdown";
  // A provider that timed out or was left by the client may still have read the prompt: bill the input
  // estimate. One that could not be reached at all read nothing.
  f.settle(
    usageRecord(
      adapter,
      call,
      timedOut || cancelled ? { kind: "cut_off", usage: null, outputBytes: 0 } : { kind: "nothing" },
      timedOut ? "timeout" : cancelled ? "cancelled" : "upstream_error",
      null,
    ),
  );
  if (timedOut) return new HttpError("upstream_timeout", `${adapter.label} did not answer in time`);
  if (why === "shutdown") return shuttingDown();
  f.log.error("upstream request failed", { error: e instanceof Error ? e : String(e) });
  return new HttpError("upstream_error", `${adapter.label} could not be reached`);
}

/** The provider refused or failed: its own error, as it sent it; nothing billed. */
export async function providerError(f: Forwarded, res: Response, headers: Headers): Promise<Response> {
  const text = await res.text().catch(() => "");
  f.upstream.done();
  f.settle(usageRecord(f.adapter, f.call, { kind: "nothing" }, "upstream_error", res.status));
  return new Response(text, { status: res.status, headers });
}

/** A whole answer: billed by its usage, else (without usage, or without JSON) by the answer itself. */
export async function jsonAnswer(f: Forwarded, res: Response, headers: Headers): Promise<Response> {
  const { adapter, call, upstream } = f;
  let text: string;
  try {
    text = await res.text();
  } catch {
    upstream.done();
    f.settle(
      usageRecord(
        adapter,
        call,
        { kind: "cut_off", usage: null, outputBytes: 0 },
        f.req.signal.aborted || abortedBy(upstream) === "shutdown" ? "cancelled" : "timeout",
        res.status,
      ),
    );
    throw new HttpError("upstream_timeout", `${adapter.label} did not finish in time`);
  }
  upstream.done();
  // Without usage (or without JSON), the answer itself is what is billed: its generated text, else the body.
  let usage: Usage | null = null;
  let outputBytes = utf8Bytes(text);
  try {
    const json = JSON.parse(text);
    usage = adapter.usageFromJson(json);
    outputBytes = utf8Bytes(adapter.outputTextOf(json)) || outputBytes;
  } catch { /* not JSON: billed by its bytes */ }
  f.settle(usageRecord(adapter, call, { kind: "answered", usage, outputBytes }, "ok", res.status));
  return new Response(text, { status: res.status, headers });
}

/** A stream, passed on as it arrives and metered; settled when it ends (completed, cut off, or left). */
export function streamAnswer(
  f: Forwarded,
  res: Response,
  stream: ReadableStream<Uint8Array>,
  headers: Headers,
  clientWantsUsage: boolean,
): Response {
  const { adapter, call, upstream } = f;
  const meter = adapter.createStreamMeter(clientWantsUsage);
  const body = meteredStream(stream, meter, (how) => {
    upstream.done();
    // A stream that ended without the provider's final usage was cut off upstream (an error event, a drop).
    const status = how === "complete"
      ? meter.final() ? "ok" : "upstream_error"
      : how === "cancelled" || abortedBy(upstream) === "shutdown" || abortedBy(upstream) === "client"
      ? "cancelled"
      : abortedBy(upstream) === "timeout"
      ? "timeout"
      : "upstream_error";
    if (how === "cancelled") upstream.controller.abort(new DOMException("client", "AbortError"));
    f.settle(
      usageRecord(
        adapter,
        call,
        {
          kind: how === "complete" && meter.final() ? "answered" : "cut_off",
          usage: meter.usage(),
          outputBytes: meter.outputBytes(),
        },
        status,
        res.status,
      ),
    );
  });
  headers.set("content-type", "text/event-stream; charset=utf-8");
  headers.set("cache-control", "no-cache");
  return new Response(body, { status: res.status, headers });
}

/** Passes a provider's SSE stream to the client, metering it; settles when it ends or the client leaves. */
function meteredStream(
  upstream: ReadableStream<Uint8Array>,
  meter: StreamMeter,
  onEnd: (how: "complete" | "cancelled" | "failed") => void,
): ReadableStream<Uint8Array> {
  const splitter = new SseSplitter();
  const decoder = new TextDecoder();
  const encoder = new TextEncoder();
  const reader = upstream.getReader();
  let ended = false;
  const end = (how: "complete" | "cancelled" | "failed") => {
    if (!ended) {
      ended = true;
      onEnd(how);
    }
  };
  /** Meters and forwards complete events; returns whether anything was sent to the client. */
  const forward = (
    controller: ReadableStreamDefaultController<Uint8Array>,
    events: ReturnType<SseSplitter["push"]>,
  ) => {
    let out = "";
    for (const event of events) {
      const kept = meter.onEvent(event);
      if (kept) out += encodeEvent(kept);
    }
    if (out) controller.enqueue(encoder.encode(out));
    return out.length > 0;
  };
  return new ReadableStream<Uint8Array>({
    // Reads until there is something to send: a read may hold half an event, or only an event the client
    // does not see, and a pull that enqueues nothing is not called again.
    async pull(controller) {
      try {
        while (true) {
          const { done, value } = await reader.read();
          if (done) {
            forward(controller, splitter.push(decoder.decode()).concat(splitter.flush()));
            controller.close();
            end("complete");
            return;
          }
          if (forward(controller, splitter.push(decoder.decode(value, { stream: true })))) return;
        }
      } catch (e) {
        end("failed");
        controller.error(e);
      }
    },
    async cancel(reason) {
      end("cancelled");
      await reader.cancel(reason).catch(() => {});
    },
  });
}
