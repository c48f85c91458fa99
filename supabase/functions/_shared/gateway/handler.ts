// The gateway pipeline, the same for every provider. A request reads top to bottom:
//   route (404) → authenticate the Supabase user token (401) → validate the body (415/413/400) → provider
//   configured? (503) → admit from this instance's lease of the user's budget and limits, renewing it when it
//   runs short (admission/: one SQL call, plus Upstash when it counts the limits; 401/403/429/402) → forward with
//   timeouts (504/502) → answer, metered (streams pass through as they arrive) → settle the usage after the
//   answer is handed back (settlement/).
//   parse.ts · admit.ts · forward.ts · meter.ts · settle.ts; the instance and its shutdown: instance.ts.
import { type RequestContext, withHttp } from "../http/with-http.ts";
import { callShape } from "./admit.ts";
import type { CallState } from "./billed.ts";
import { forward, responseHeaders } from "./forward.ts";
import { type GatewayInstance, shuttingDown, startInstance } from "./instance.ts";
import { type Forwarded, jsonAnswer, providerError, streamAnswer, upstreamFailed } from "./meter.ts";
import type { GatewayOptions } from "./options.ts";
import { callerClaims, estimateInputTokens, providerKey, readCall, routeOf } from "./parse.ts";
import { type ProviderAdapter, utf8Bytes } from "./providers/adapter.ts";
import { settlementOf } from "./settle.ts";

export function createGatewayHandler(adapter: ProviderAdapter, options: GatewayOptions) {
  const gateway = startInstance(adapter, options);
  return withHttp(
    // Each call is metered under its request id, so the gateway never takes one from the caller.
    { name: adapter.functionName, methods: ["POST"], acceptRequestId: false },
    (req, ctx) => handle(gateway, req, ctx),
  );
}

async function handle(gateway: GatewayInstance, req: Request, ctx: RequestContext): Promise<Response> {
  const route = routeOf(gateway.adapter, ctx.url);
  // The endpoint the path names reads, forwards and meters the call (a provider may serve several).
  const adapter = route.endpoint ?? gateway.adapter;
  const claims = await callerClaims(req, ctx.log);
  const log = ctx.log.child({ user_id: claims.sub, provider: adapter.provider });
  const { raw, body, described } = await readCall(req, adapter, route);
  const key = providerKey(adapter);
  if (gateway.shuttingDown) throw shuttingDown();

  // Admit: from this instance's lease of the user's budget and limits, or after renewing it (one SQL call and,
  // when Upstash counts the limits, one Upstash call).
  const inputEstimate = estimateInputTokens(utf8Bytes(raw));
  const ticket = await gateway.leases.admit(claims.sub, callShape(described, inputEstimate));
  const call: CallState = {
    requestId: ctx.requestId,
    userId: claims.sub,
    model: described.model,
    searchContextSize: described.searchContextSize ?? null,
    started: performance.now(),
    inputEstimate,
    upstreamRequestId: null,
    ticket,
  };

  // Forward, with the max output capped to the plan's.
  const prepared = adapter.prepare(body, route, ticket.maxOutput);
  const upstream = forward(adapter, route, prepared.body, key, req, gateway.options);
  const settle = settlementOf(gateway.inFlight, upstream, ticket, log);
  const forwarded: Forwarded = { adapter, req, log, call, upstream, settle };
  let res: Response;
  try {
    res = await upstream.response;
  } catch (e) {
    throw upstreamFailed(forwarded, e);
  }

  // Answer, metered, and settled when it is over.
  call.upstreamRequestId = adapter.requestIdHeader ? res.headers.get(adapter.requestIdHeader) : null;
  const headers = responseHeaders(res, ticket.limitHeaders, adapter.requestIdHeader);
  if (!res.ok || !res.body) return await providerError(forwarded, res, headers);
  const isStream = described.stream || (res.headers.get("content-type") ?? "").includes("text/event-stream");
  if (!isStream) return await jsonAnswer(forwarded, res, headers);
  return streamAnswer(forwarded, res, res.body, headers, prepared.clientWantsUsage);
}
