// Preloaded (`node --import`) into the Portkey gateway process that the benchmark uses for streaming only.
//
// @portkey-ai/gateway 1.15.2 on Node answers every `stream: true` chat completion with 500 "Something went
// wrong" (log: `TypeError: immutable` in updateHeaders). Its stream path builds `new Response(stream,
// upstreamResponse)`; @hono/node-server (1.19.x, which Portkey's own @hono/node-ws pulls in) replaces the
// global Response with a lighter one that keeps the upstream fetch response's Headers object, whose guard
// is "immutable", and Portkey then appends its x-portkey-* headers to it. Upstream: Portkey-AI/gateway
// issues #1389 and #1550 (fix proposed in PR #1551: copy the headers into a new Response).
//
// This applies that fix from outside: once @hono/node-server has installed its Response, `new
// Response(body, aFetchResponse)` gets a copy of that response's status and headers instead of the response
// itself. Nothing else changes. The non-streaming benchmark runs use an unpatched Portkey process.
import process from "node:process";

const NativeResponse = globalThis.Response;

const timer = setInterval(() => {
  const Installed = globalThis.Response;
  if (Installed === NativeResponse) return; // the server is not listening yet
  clearInterval(timer);
  class Response extends Installed {
    constructor(body, init) {
      if (init instanceof NativeResponse && !(init instanceof Installed)) {
        init = { status: init.status, statusText: init.statusText, headers: new Headers(init.headers) };
      }
      super(body, init);
    }
  }
  Object.defineProperty(globalThis, "Response", { value: Response, writable: true, configurable: true });
  if (process.env.BENCH_DEBUG) console.error("portkey-stream-fix: applied");
}, 1);
timer.unref();
