// Runs one edge function (supabase/functions/<name>/index.ts) as its own process, the way the edge
// runtime runs a user worker: the module calls Deno.serve(handler) at top level; here that call is
// bound to 127.0.0.1 on a free port, which is reported on stderr for the functions server.
import { pathToFileURL } from "node:url";

const entry = Deno.args[0];
if (!entry) throw new Error("usage: function-worker.ts <path/to/index.ts>");

type Handler = Deno.ServeHandler;
type Options = Deno.ServeTcpOptions & { handler?: Handler };

const originalServe = Deno.serve.bind(Deno) as (options: Options, handler: Handler) => Deno.HttpServer;
let served = false;

function serveOnFreePort(a: Handler | Options, b?: Handler): Deno.HttpServer {
  if (served) throw new Error("a function may call Deno.serve only once");
  served = true;
  const options: Options = typeof a === "function" ? {} : a;
  const handler = typeof a === "function" ? a : (b ?? a.handler);
  if (!handler) throw new Error("Deno.serve was called without a handler");
  return originalServe({
    ...options,
    hostname: "127.0.0.1",
    port: 0,
    onListen({ port }) {
      console.error(JSON.stringify({ worker_ready: port })); // on stderr: stdout is the function's own log
    },
  }, handler);
}
(Deno as unknown as { serve: typeof serveOnFreePort }).serve = serveOnFreePort;

// The edge runtime's lifecycle, as functions see it: EdgeRuntime.waitUntil keeps work that outlives a response
// (usage settlements) alive, and on shutdown `beforeunload` is dispatched and that work may finish first.
const SHUTDOWN_GRACE_MS = 3_000;
const pendingWork = new Set<Promise<unknown>>();
(globalThis as { EdgeRuntime?: unknown }).EdgeRuntime = {
  waitUntil(promise: Promise<unknown>) {
    pendingWork.add(promise);
    promise.catch(() => {}).finally(() => pendingWork.delete(promise));
  },
};
Deno.addSignalListener("SIGTERM", async () => {
  globalThis.dispatchEvent(new Event("beforeunload"));
  const grace = new Promise((resolve) => setTimeout(resolve, SHUTDOWN_GRACE_MS));
  await Promise.race([Promise.allSettled([...pendingWork]), grace]);
  Deno.exit(0);
});

await import(pathToFileURL(entry).href);
if (!served) {
  console.error(JSON.stringify({ level: "error", msg: `${entry} did not call Deno.serve` }));
  Deno.exit(1);
}
