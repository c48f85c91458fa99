// Work that finishes after the response is handed back (a settlement, a lease given back): the runtime is kept
// alive for it (Supabase's EdgeRuntime.waitUntil), and its failure never surfaces as an unhandled rejection.

export function background(promise: Promise<unknown>): void {
  const runtime = (globalThis as { EdgeRuntime?: { waitUntil?: (p: Promise<unknown>) => void } }).EdgeRuntime;
  runtime?.waitUntil?.(promise);
  promise.catch(() => {});
}
