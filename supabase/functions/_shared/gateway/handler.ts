// The gateway pipeline, the same for every provider. A request reads top to bottom:
//   route (404) → authenticate the Supabase user token (401) → validate the body (415/413/400) → provider
//   configured? (503) → admit from this instance's lease of the user's budget and limits, renewing it when it
//   runs short (admission/: one SQL call, plus Upstash when it counts the limits; 401/403/429/402) → forward with
//   timeouts (504/502) → answer, metered (streams pass through as they arrive) → settle the usage after the
//   answer is handed back (settlement/).
//   parse.ts · admit.ts · forward.ts · meter.ts · settle.ts; the instance and its shutdown: instance.ts.
// The agents runtime calls the same pipeline in-process (createInProcessGateway): its requests are built like any
// SDK call (the user's token as the API key), and what only the server may say about a call (the user its run was
// started for, verified then; its chat session and agent run; who wants to hear how it settled) travels beside the
// request object, never in it, so no client can claim it.
import type { UserClaims } from "../auth/verify.ts";
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
import type { Recorded } from "./settlement/record.ts";

/** What the agents runtime says about a call it makes in-process: never read from the request itself. */
export type InProcessCall = {
  /**
   * The user, as verified from their token when the run was started: a run that outlives the token (an access
   * token lasts an hour, and a client may start a run with seconds left on it) is not refused halfway.
   */
  user: UserClaims;
  sessionId: string;
  runId: string;
  /**
   * The gateway's request id of the call (its token_usage row) and its hold (the most it is expected to cost, in
   * platform tokens), as soon as it is admitted.
   */
  onAdmitted?: (requestId: string, holdTokens: number) => void;
  /** How the call settled (its cost in platform tokens when it did at once). */
  onSettled?: (recorded: Recorded) => void;
  /**
   * The calls, this one included, the caller will make one after another if nothing stops it (an agent run's
   * remaining steps): the lease is sized for them, so the next ones are admitted from memory.
   */
  callsAhead?: number;
};

const inProcessCalls = new WeakMap<Request, InProcessCall>();

export function createGatewayHandler(adapter: ProviderAdapter, options: GatewayOptions) {
  const gateway = startInstance(adapter, options);
  return withHttp(
    // Each call is metered under its request id, so the gateway never takes one from the caller.
    { name: adapter.functionName, methods: ["POST"], acceptRequestId: false },
    (req, ctx) => handle(gateway, req, ctx),
  );
}

/**
 * The gateway pipeline as a function for the agents runtime (one instance per provider in its process): the same
 * admission, hold, limits, settlement and metering as the proxy, without an HTTP hop. The request is built as the
 * provider's SDK builds it, with the user's token as its API key; the user is the one the run was started for
 * (InProcessCall.user).
 */
export function createInProcessGateway(adapter: ProviderAdapter, options: GatewayOptions) {
  const handler = createGatewayHandler(adapter, options);
  return (req: Request, call: InProcessCall): Promise<Response> => {
    inProcessCalls.set(req, call);
    return handler(req);
  };
}

async function handle(gateway: GatewayInstance, req: Request, ctx: RequestContext): Promise<Response> {
  const route = routeOf(gateway.adapter, ctx.url);
  // The endpoint the path names reads, forwards and meters the call (a provider may serve several).
  const adapter = route.endpoint ?? gateway.adapter;
  const inProcess = inProcessCalls.get(req);
  // An in-process call is the user its run was started for; any other, whoever its token verifies as.
  const claims = inProcess?.user ?? await callerClaims(req, ctx.log);
  const log = ctx.log.child({ user_id: claims.sub, provider: adapter.provider });
  const { raw, body, described } = await readCall(req, adapter, route);
  const key = providerKey(adapter);
  if (gateway.shuttingDown) throw shuttingDown();

  // Admit: from this instance's lease of the user's budget and limits, or after renewing it (one SQL call and,
  // when Upstash counts the limits, one Upstash call).
  const inputEstimate = described.free ? 0 : estimateInputTokens(utf8Bytes(raw));
  const ticket = await gateway.leases.admit(
    claims.sub,
    callShape(described, inputEstimate),
    inProcess?.callsAhead,
  );
  inProcess?.onAdmitted?.(ctx.requestId, ticket.hold);
  const call: CallState = {
    requestId: ctx.requestId,
    userId: claims.sub,
    model: described.model,
    searchContextSize: described.searchContextSize ?? null,
    started: performance.now(),
    inputEstimate,
    upstreamRequestId: null,
    ticket,
    sessionId: inProcess?.sessionId ?? null,
    runId: inProcess?.runId ?? null,
  };

  // Forward, with the max output capped to the plan's.
  const prepared = adapter.prepare(body, route, ticket.maxOutput);
  const upstream = forward(adapter, route, prepared.body, key, req, gateway.options);
  const settle = settlementOf(gateway.inFlight, upstream, ticket, log, inProcess?.onSettled);
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
