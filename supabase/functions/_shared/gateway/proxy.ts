// The gateway pipeline, the same for every provider. A request reads top to bottom:
//   route (404) → authenticate the Supabase user token (401) → validate the body (415/413/400) →
//   provider configured? (503) → admit from this instance's lease of the user's budget and limits, renewing
//   it when it runs short (lease.ts: one SQL call, plus Upstash when it counts the limits; 401/403/429/402)
//   → forward with timeouts (504/502) → answer (streams pass through as they arrive) → settle the usage after
//   the answer is handed back (usage.ts).
import { API_KEY_TOKEN_HEADERS, bearerOrApiKey, verifyUserTokenCached } from "../auth.ts";
import { db } from "../db.ts";
import { optionalEnv } from "../env.ts";
import { HttpError, toHttpError } from "../errors.ts";
import { type RequestContext, withHttp } from "../http.ts";
import type { Logger } from "../log.ts";
import { limit } from "../ratelimit.ts";
import { redis } from "../redis.ts";
import { parseWith, readRawBody, requireJson } from "../validation.ts";
import {
  type ProviderAdapter,
  type Route,
  type StreamMeter,
  tokensForBytes,
  type Usage,
  utf8Bytes,
} from "./adapter.ts";
import { encodeEvent, SseSplitter } from "./sse.ts";
import {
  createLeaseBook,
  DEFAULT_LEASE_SETTINGS,
  type LeaseReply,
  type LeaseSettings,
  type LeaseStore,
  type Ticket,
} from "./lease.ts";
import { background, closeLease, flushSettlements, recordUsage, type UsageRecord } from "./usage.ts";
import { Timeout, withTimeout } from "../deadline.ts";

export const MAX_BODY_BYTES = 4 * 1024 * 1024;

export type GatewayOptions = {
  /** Count limits in Upstash (true when UPSTASH_* are set) or in Postgres inside the admission call. */
  upstashLimits: boolean;
  /** Time allowed until the provider's response headers arrive. */
  headersTimeoutMs: number;
  /** Time allowed for the whole call, stream included. */
  totalTimeoutMs: number;
  /** Lease tuning (lease.ts); the defaults otherwise. */
  leases?: Partial<Omit<LeaseSettings, "holdSeconds">>;
};

/** A whole number of at least `min` from the env, or undefined when unset; anything else stops the boot. */
function intEnv(name: string, min: number): number | undefined {
  const raw = optionalEnv(name);
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < min) throw new Error(`${name} must be a whole number >= ${min}`);
  return n;
}

export function gatewayOptionsFromEnv(): GatewayOptions {
  const leases: Partial<Omit<LeaseSettings, "holdSeconds">> = {};
  const maxCalls = intEnv("GATEWAY_LEASE_MAX_CALLS", 1);
  const idleMs = intEnv("GATEWAY_LEASE_IDLE_MS", 0);
  const planTtlMs = intEnv("GATEWAY_PLAN_TTL_MS", 0);
  if (maxCalls !== undefined) leases.maxCalls = maxCalls;
  if (idleMs !== undefined) leases.idleMs = idleMs;
  if (planTtlMs !== undefined) leases.planTtlMs = planTtlMs;
  return {
    upstashLimits: redis() !== null,
    headersTimeoutMs: intEnv("UPSTREAM_HEADERS_TIMEOUT_MS", 1) ?? 30_000,
    totalTimeoutMs: intEnv("UPSTREAM_TIMEOUT_MS", 1) ?? 600_000,
    leases,
  };
}

/** Rough upper bound of a request's input tokens, from its body's UTF-8 bytes (see tokensForBytes). */
export const estimateInputTokens = (bodyBytes: number) => tokensForBytes(bodyBytes);

/** How long admission may wait for a lease renewal (SQL, and Upstash) before answering 503. */
export const ADMISSION_DEADLINE_MS = 3_000;

/** Leases kept in the database (private.gateway_lease); the limits in Upstash when it is configured. */
export function leaseStore(
  adapter: ProviderAdapter,
  options: Pick<GatewayOptions, "upstashLimits">,
  holdSeconds: number,
): LeaseStore {
  return {
    async lease(r) {
      // Fails fast when the database does not answer (503), instead of queueing in the driver for the outage.
      const [row] = await withTimeout(
        db()<LeaseReply[]>`
        select outcome, message, plan, allowed_models, plan_max_output, plan_max_input, requests_per_minute,
               tokens_per_minute, granted_tokens, granted_requests, granted_rate_tokens, requests_remaining,
               rate_tokens_remaining, limit_value, limit_reset_at, pricing_id, input_micro_usd_per_mtok,
               cache_write_micro_usd_per_mtok, output_micro_usd_per_mtok, reasoning_micro_usd_per_mtok,
               rate_micro_usd_per_mtok, request_fee_micro_usd, total_balance
          from private.gateway_lease(
            p_user_id => ${r.userId}, p_provider => ${adapter.provider}, p_lease_id => ${r.leaseId},
            p_model => ${r.model}, p_input_estimate => ${r.inputEstimate}, p_requested_output => ${r.requestedOutput},
            p_choices => ${r.choices}, p_calls => ${r.calls}, p_have_tokens => ${r.haveTokens},
            p_have_requests => ${r.haveRequests}, p_have_rate_tokens => ${r.haveRateTokens}, p_ahead => ${r.ahead},
            p_check_limits => ${r.checkLimits}, p_hold_seconds => ${holdSeconds},
            p_input_unbounded => ${r.inputUnbounded}, p_search_context_size => ${r.searchContextSize})`,
        ADMISSION_DEADLINE_MS,
        "admission",
      ).catch((e) => {
        throw e instanceof HttpError
          ? e
          : toHttpError(e).status >= 500 || e instanceof Timeout
          ? new HttpError("service_unavailable", "The gateway cannot reach its database; try again shortly")
          : e;
      });
      return row;
    },
    take: options.upstashLimits
      ? (key, max, cost) => limit(key, { limit: max, windowSeconds: 60, cost: Math.min(cost, max) })
      : null,
    close: closeLease,
  };
}

/** What of the provider's response headers a client sees: nothing about our account, limits or servers. */
const PASSED_RESPONSE_HEADERS = ["content-type", "retry-after"];

function responseHeaders(
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

function fetchWithTimeouts(
  url: string,
  init: RequestInit,
  options: GatewayOptions,
  clientSignal: AbortSignal,
) {
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

type CallState = {
  requestId: string;
  userId: string;
  model: string;
  searchContextSize: string | null;
  started: number;
  inputEstimate: number;
  upstreamRequestId: string | null;
  ticket: Ticket;
};

/** What the provider is known to have done, to bill a call by. */
type Billed =
  /** It read nothing (unreachable) or refused the call: nothing is billed. */
  | { kind: "nothing" }
  /** It answered in full: what it reported, or, without a usage report, the estimate from the answer. */
  | { kind: "answered"; usage: Usage | null; outputBytes: number }
  /** It was cut off (timeout, client gone, upstream failed, shutdown): at least what was delivered. */
  | { kind: "cut_off"; usage: Usage | null; outputBytes: number };

/**
 * The usage record of a call. A cut-off call (a stream that ended before the provider's final usage, whoever
 * ended it), or one whose provider reported no usage or counts that had to be mended, is billed the larger of
 * what the provider reported and what was delivered (the input estimate; the generated text forwarded, at about
 * 3 bytes a token), and flagged as estimated.
 */
function usageRecord(
  adapter: ProviderAdapter,
  call: CallState,
  billed: Billed,
  status: UsageRecord["status"],
  httpStatus: number | null,
): UsageRecord {
  const none: Usage = {
    inputTokens: 0,
    cachedInputTokens: 0,
    cacheWriteTokens: 0,
    outputTokens: 0,
    reasoningTokens: 0,
    estimated: false,
  };
  let usage = none;
  if (billed.kind !== "nothing") {
    const reported = billed.usage;
    // Never less than what was delivered: when cut off, without a report, or with a report that had to be mended.
    const estimate = billed.kind === "cut_off" || reported === null || reported.estimated;
    usage = reported ?? none;
    if (estimate) {
      // The input a trustworthy report gave (Anthropic's message_start) stands; otherwise at least the estimate.
      const trusted = reported !== null && !reported.estimated && reported.inputTokens > 0;
      const input = trusted ? usage.inputTokens : Math.max(usage.inputTokens, call.inputEstimate);
      const output = Math.max(usage.outputTokens, tokensForBytes(billed.outputBytes));
      usage = { ...usage, inputTokens: input, outputTokens: output, estimated: true };
    }
  }
  return {
    request_id: call.requestId,
    user_id: call.userId,
    provider: adapter.provider,
    model: call.model,
    input_tokens: usage.inputTokens,
    cached_input_tokens: usage.cachedInputTokens,
    cache_write_tokens: usage.cacheWriteTokens,
    output_tokens: usage.outputTokens,
    reasoning_tokens: usage.reasoningTokens,
    // The request fee is billed only for a call the provider served (one that refused or was never reached
    // searched nothing).
    search_context_size: billed.kind === "nothing" ? null : call.searchContextSize,
    status,
    http_status: httpStatus,
    latency_ms: Math.round(performance.now() - call.started),
    upstream_request_id: call.upstreamRequestId,
    tokens_estimated: usage.estimated,
    lease_id: call.ticket.leaseId,
    admitted_at: call.ticket.admittedAt.toISOString(),
  };
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

/**
 * The calls in flight in this instance: at shutdown each is cut off (its upstream aborted) and settled with
 * what it delivered before the process exits.
 */
type InFlight = { abort(): void; settled: Promise<void> };

export function createGatewayHandler(adapter: ProviderAdapter, options: GatewayOptions) {
  // A lease's hold outlives the calls it admits; only an instance that died leaves it to the sweep.
  const holdSeconds = Math.ceil(options.totalTimeoutMs / 1000) + 120;
  const leases = createLeaseBook(leaseStore(adapter, options, holdSeconds), {
    ...DEFAULT_LEASE_SETTINGS,
    ...options.leases,
    holdSeconds,
  });
  const inFlight = new Set<InFlight>();
  let shuttingDown = false;
  // Shutting down (the edge runtime's beforeunload; the local worker dispatches it on SIGTERM and allows 3 s): no
  // new call is admitted, every call in flight is cut off now and settled with what it delivered, leases go
  // back, and the settlements are flushed, all before the process exits. Waiting for streams to finish could
  // outlast the platform's grace; cutting them at once never loses their usage.
  globalThis.addEventListener("beforeunload", () => {
    shuttingDown = true;
    const calls = [...inFlight];
    for (const c of calls) c.abort();
    background((async () => {
      await withTimeout(Promise.allSettled(calls.map((c) => c.settled)), 1_000, "calls ending").catch(
        () => {},
      );
      leases.closeAll();
      await flushSettlements();
    })());
  });
  return withHttp(
    // Each call is metered under its request id, so the gateway never takes one from the caller.
    { name: adapter.functionName, methods: ["POST"], acceptRequestId: false },
    async (req: Request, ctx: RequestContext) => {
      // Route: the path after /<function-name>.
      const path = ctx.url.pathname.replace(new RegExp(`^/${adapter.functionName}`), "") || "/";
      const route: Route | null = adapter.route(path, ctx.url.searchParams);
      if (!route) throw new HttpError("not_found", `No such endpoint: POST ${path}`);

      // Authenticate: the user's Supabase token, where the provider's SDK sends its API key.
      const claims = await verifyUserTokenCached(bearerOrApiKey(req, API_KEY_TOKEN_HEADERS), ctx.log);
      const log: Logger = ctx.log.child({ user_id: claims.sub, provider: adapter.provider });

      // Validate: the provider's allow-list of fields, every number bounded.
      requireJson(req);
      const raw = await readRawBody(req, MAX_BODY_BYTES, "text");
      let parsed: unknown;
      try {
        parsed = JSON.parse(raw);
      } catch {
        throw new HttpError("invalid_request", "Body is not valid JSON");
      }
      const body = parseWith(adapter.schema, parsed);
      const described = adapter.describe(body, route);
      const { model, stream, requestedMaxOutput, choices } = described;

      const key = optionalEnv(adapter.keyEnv);
      if (!key) {
        throw new HttpError(
          "service_unavailable",
          `${adapter.label} is not configured on the server`,
        );
      }
      if (shuttingDown) throw new HttpError("service_unavailable", "This instance is shutting down; retry");

      // Admit: from this instance's lease of the user's budget and limits, or after renewing it (one SQL call
      // and, when Upstash counts the limits, one Upstash call).
      const inputEstimate = estimateInputTokens(utf8Bytes(raw));
      const ticket = await leases.admit(claims.sub, {
        model,
        inputEstimate,
        requestedOutput: requestedMaxOutput,
        choices,
        inputUnbounded: described.inputUnbounded,
        searchContextSize: described.searchContextSize ?? null,
      });
      const call: CallState = {
        requestId: ctx.requestId,
        userId: claims.sub,
        model,
        searchContextSize: described.searchContextSize ?? null,
        started: performance.now(),
        inputEstimate,
        upstreamRequestId: null,
        ticket,
      };

      // Forward.
      const prepared = adapter.prepare(body, route, ticket.maxOutput);
      const base = (optionalEnv(adapter.baseUrlEnv) ?? adapter.defaultBaseUrl).replace(/\/+$/, "");
      const upstreamCall = fetchWithTimeouts(
        `${base}${route.upstreamPath}`,
        {
          method: "POST",
          headers: {
            ...adapter.upstreamHeaders(key, req),
            "content-type": "application/json",
            "accept-encoding": "identity",
          },
          body: JSON.stringify(prepared.body),
        },
        options,
        req.signal,
      );
      let markSettled!: () => void;
      const tracked: InFlight = {
        abort: () => upstreamCall.controller.abort(new DOMException("shutdown", "AbortError")),
        settled: new Promise<void>((resolve) => markSettled = resolve),
      };
      inFlight.add(tracked);
      const settle = (record: UsageRecord) => {
        inFlight.delete(tracked);
        ticket.end();
        background(
          recordUsage(record, log).then((r) => {
            if (r.outcome === "settled") ticket.settled(r.costTokens, r.balance);
          }),
        );
        markSettled();
      };
      const abortedBy = () => {
        const reason = upstreamCall.controller.signal.reason;
        return reason instanceof DOMException ? reason.message : null;
      };

      let upstream: Response;
      try {
        upstream = await upstreamCall.response;
      } catch (e) {
        upstreamCall.done();
        const why = abortedBy();
        const timedOut = why === "timeout";
        const cancelled = req.signal.aborted || why === "client" || why === "shutdown";
        // A provider that timed out or was left by the client may still have read the prompt: bill the input
        // estimate. One that could not be reached at all read nothing.
        settle(
          usageRecord(
            adapter,
            call,
            timedOut || cancelled ? { kind: "cut_off", usage: null, outputBytes: 0 } : { kind: "nothing" },
            timedOut ? "timeout" : cancelled ? "cancelled" : "upstream_error",
            null,
          ),
        );
        if (timedOut) throw new HttpError("upstream_timeout", `${adapter.label} did not answer in time`);
        if (why === "shutdown") {
          throw new HttpError("service_unavailable", "This instance is shutting down; retry");
        }
        log.error("upstream request failed", { error: e instanceof Error ? e : String(e) });
        throw new HttpError("upstream_error", `${adapter.label} could not be reached`);
      }
      call.upstreamRequestId = adapter.requestIdHeader ? upstream.headers.get(adapter.requestIdHeader) : null;
      const headers = responseHeaders(upstream, ticket.limitHeaders, adapter.requestIdHeader);

      // The provider refused or failed: its own error, as it sent it; nothing billed.
      if (!upstream.ok || !upstream.body) {
        const text = await upstream.text().catch(() => "");
        upstreamCall.done();
        settle(usageRecord(adapter, call, { kind: "nothing" }, "upstream_error", upstream.status));
        return new Response(text, { status: upstream.status, headers });
      }

      const isStream = stream || (upstream.headers.get("content-type") ?? "").includes("text/event-stream");
      if (!isStream) {
        let text: string;
        try {
          text = await upstream.text();
        } catch {
          upstreamCall.done();
          settle(
            usageRecord(
              adapter,
              call,
              { kind: "cut_off", usage: null, outputBytes: 0 },
              req.signal.aborted || abortedBy() === "shutdown" ? "cancelled" : "timeout",
              upstream.status,
            ),
          );
          throw new HttpError("upstream_timeout", `${adapter.label} did not finish in time`);
        }
        upstreamCall.done();
        // Without usage (or without JSON), the answer itself is what is billed: its generated text, else the body.
        let usage: Usage | null = null;
        let outputBytes = utf8Bytes(text);
        try {
          const json = JSON.parse(text);
          usage = adapter.usageFromJson(json);
          outputBytes = utf8Bytes(adapter.outputTextOf(json)) || outputBytes;
        } catch { /* not JSON: billed by its bytes */ }
        settle(usageRecord(adapter, call, { kind: "answered", usage, outputBytes }, "ok", upstream.status));
        return new Response(text, { status: upstream.status, headers });
      }

      const meter = adapter.createStreamMeter(prepared.clientWantsUsage);
      const body$ = meteredStream(upstream.body, meter, (how) => {
        upstreamCall.done();
        // A stream that ended without the provider's final usage was cut off upstream (an error event, a drop).
        const status = how === "complete"
          ? meter.final() ? "ok" : "upstream_error"
          : how === "cancelled" || abortedBy() === "shutdown"
          ? "cancelled"
          : upstreamCall.controller.signal.aborted
          ? "timeout"
          : "upstream_error";
        if (how === "cancelled") upstreamCall.controller.abort(new DOMException("client", "AbortError"));
        settle(
          usageRecord(
            adapter,
            call,
            {
              kind: how === "complete" && meter.final() ? "answered" : "cut_off",
              usage: meter.usage(),
              outputBytes: meter.outputBytes(),
            },
            status,
            upstream.status,
          ),
        );
      });
      headers.set("content-type", "text/event-stream; charset=utf-8");
      headers.set("cache-control", "no-cache");
      return new Response(body$, { status: upstream.status, headers });
    },
  );
}
