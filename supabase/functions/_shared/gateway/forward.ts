// Forwarding a call to the provider: the prepared body to its base URL (<PROVIDER>_BASE_URL, else its public API)
// with the server's key, under a headers timeout and a total timeout, aborted if the client leaves; and which of
// the provider's response headers a client sees (nothing about our account, limits or servers).
import { env } from "../platform/env.ts";
import type { GatewayOptions } from "./options.ts";
import type { ProviderAdapter, Route } from "./providers/adapter.ts";

/** The upstream call in flight; `done` clears its timers once it has ended (read in full, or failed). */
export type UpstreamCall = {
  response: Promise<Response>;
  controller: AbortController;
  done(): void;
};

function fetchWithTimeouts(
  url: string,
  init: RequestInit,
  options: GatewayOptions,
  clientSignal: AbortSignal,
): UpstreamCall {
  const controller = new AbortController();
  const abort = (reason: string) => controller.abort(new DOMException(reason, "AbortError"));
  const onClientAbort = () => abort("client");
  clientSignal.addEventListener("abort", onClientAbort, { once: true });
  const total = setTimeout(() => abort("timeout"), options.totalTimeoutMs);
  const headersTimer = setTimeout(() => abort("timeout"), options.headersTimeoutMs);
  const response = fetch(url, { ...init, signal: controller.signal }).finally(() =>
    clearTimeout(headersTimer)
  );
  const done = () => {
    clearTimeout(total);
    clearTimeout(headersTimer);
    clientSignal.removeEventListener("abort", onClientAbort);
  };
  return { response, controller, done };
}

/** Sends the prepared body upstream. */
export function forward(
  adapter: ProviderAdapter,
  route: Route,
  body: unknown,
  key: string,
  req: Request,
  options: GatewayOptions,
): UpstreamCall {
  const base = (env.string(adapter.baseUrlEnv) ?? adapter.defaultBaseUrl).replace(/\/+$/, "");
  return fetchWithTimeouts(
    `${base}${route.upstreamPath}`,
    {
      method: "POST",
      headers: {
        ...adapter.upstreamHeaders(key, req),
        "content-type": "application/json",
        "accept-encoding": "identity",
      },
      body: JSON.stringify(body),
    },
    options,
    req.signal,
  );
}

/** Why the upstream call was aborted ("timeout", "client", "shutdown"), or null if it was not. */
export function abortedBy(call: UpstreamCall): string | null {
  const reason = call.controller.signal.reason;
  return reason instanceof DOMException ? reason.message : null;
}

/** What of the provider's response headers a client sees: nothing about our account, limits or servers. */
const PASSED_RESPONSE_HEADERS = ["content-type", "retry-after"];

export function responseHeaders(
  upstream: Response,
  extra: Record<string, string>,
  requestIdHeader?: string,
): Headers {
  const headers = new Headers();
  // The provider's own request id too (Anthropic's request-id; OpenAI's x-request-id is ours to set).
  const names = requestIdHeader && requestIdHeader !== "x-request-id"
    ? [...PASSED_RESPONSE_HEADERS, requestIdHeader]
    : PASSED_RESPONSE_HEADERS;
  for (const name of names) {
    const value = upstream.headers.get(name);
    if (value !== null) headers.set(name, value);
  }
  for (const [k, v] of Object.entries(extra)) headers.set(k, v);
  return headers;
}
