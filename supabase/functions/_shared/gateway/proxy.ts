// The gateway pipeline, the same for every provider. A request reads top to bottom:
//   route (404) → authenticate the Supabase user token (401) → validate the body (415/413/400) →
//   provider configured? (503) → admit: one SQL call decides user, plan, model, price, limits and the
//   token hold (401/403/429/402) → Upstash limits when configured (429) → forward with timeouts (504/502)
//   → answer (streams pass through as they arrive) → settle the usage after the answer is handed back.
import { API_KEY_TOKEN_HEADERS, bearerOrApiKey, verifyUserTokenCached } from "../auth.ts";
import { db } from "../db.ts";
import { optionalEnv } from "../env.ts";
import { HttpError } from "../errors.ts";
import { type RequestContext, withHttp } from "../http.ts";
import type { Logger } from "../log.ts";
import { limit, rateLimited, rateLimitHeaders, type RateLimitResult } from "../ratelimit.ts";
import { redis } from "../redis.ts";
import { parseWith, readRawBody, requireJson } from "../validation.ts";
import type { ProviderAdapter, Route, StreamMeter, Usage } from "./adapter.ts";
import { encodeEvent, SseSplitter } from "./sse.ts";
import { background, recordUsage, type UsageRecord } from "./usage.ts";

export const MAX_BODY_BYTES = 4 * 1024 * 1024;

export type GatewayOptions = {
  /** Count limits in Upstash (true when UPSTASH_* are set) or in Postgres inside the admission call. */
  upstashLimits: boolean;
  /** Time allowed until the provider's response headers arrive. */
  headersTimeoutMs: number;
  /** Time allowed for the whole call, stream included. */
  totalTimeoutMs: number;
};

export function gatewayOptionsFromEnv(): GatewayOptions {
  return {
    upstashLimits: redis() !== null,
    headersTimeoutMs: Number(optionalEnv("UPSTREAM_HEADERS_TIMEOUT_MS") ?? 30_000),
    totalTimeoutMs: Number(optionalEnv("UPSTREAM_TIMEOUT_MS") ?? 600_000),
  };
}

type Admission = {
  outcome: "ok" | "unauthorized" | "forbidden" | "rate_limited" | "payment_required";
  message: string | null;
  max_output_tokens: number | null;
  hold_tokens: string | null;
  requests_per_minute: number | null;
  tokens_per_minute: number | null;
  limit_value: number | null;
  limit_remaining: number | null;
  limit_reset_at: Date | null;
};

/** Rough upper bound of a request's input tokens (about 4 characters a token; a third to be safe). */
export const estimateInputTokens = (bodyBytes: number) => Math.ceil(bodyBytes / 3);

async function admit(
  userId: string,
  adapter: ProviderAdapter,
  model: string,
  requestId: string,
  inputEstimate: number,
  requestedOutput: number | null,
  choices: number,
  checkLimits: boolean,
  holdSeconds: number,
): Promise<Admission> {
  const [row] = await db()<Admission[]>`
    select outcome, message, max_output_tokens, hold_tokens, requests_per_minute, tokens_per_minute,
           limit_value, limit_remaining, limit_reset_at
      from private.gateway_admit(
        p_user_id => ${userId}, p_provider => ${adapter.provider}, p_model => ${model},
        p_request_id => ${requestId}, p_input_estimate => ${inputEstimate},
        p_requested_output => ${requestedOutput}, p_check_limits => ${checkLimits}, p_choices => ${choices},
        p_hold_seconds => ${holdSeconds})`;
  return row;
}

function refuse(admission: Admission): HttpError {
  const message = admission.message ?? "Refused";
  switch (admission.outcome) {
    case "unauthorized":
      return new HttpError("unauthorized", "Unknown user", { "www-authenticate": "Bearer" });
    case "forbidden":
      return new HttpError("forbidden", message);
    case "payment_required":
      return new HttpError("payment_required", message);
    default: {
      const reset = admission.limit_reset_at?.getTime() ?? Date.now() + 60_000;
      return rateLimited({
        allowed: false,
        limit: admission.limit_value ?? 0,
        remaining: 0,
        resetAt: reset,
        backend: "postgres",
      });
    }
  }
}

type PlanLimits = { rpm: number; tpm: number; maxOutput: number; until: number };

/**
 * The limits of each user's plan as the last admission reported them, for up to a minute: with them the
 * Upstash windows are counted while the admission call runs instead of after it. A plan change reaches
 * the limiter within that minute; the admission itself always reads the current plan.
 */
const planLimits = new Map<string, PlanLimits>();
const PLAN_LIMITS_TTL_MS = 60_000;

function rememberPlan(userId: string, admission: Admission) {
  if (planLimits.size >= 10_000) planLimits.delete(planLimits.keys().next().value!);
  planLimits.set(userId, {
    rpm: admission.requests_per_minute!,
    tpm: admission.tokens_per_minute!,
    maxOutput: admission.max_output_tokens!,
    until: Date.now() + PLAN_LIMITS_TTL_MS,
  });
}

/**
 * Upstash limits (requests and tokens per minute), counted concurrently; the tokens window counts the hold.
 * Returns the denying result if either denies, else the requests result (for the headers).
 */
async function upstashLimits(userId: string, rpmLimit: number, tpmLimit: number, hold: number) {
  const [rpm, tpm] = await Promise.all([
    limit(`gw:rpm:${userId}`, { limit: rpmLimit, windowSeconds: 60 }),
    limit(`gw:tpm:${userId}`, {
      limit: tpmLimit,
      windowSeconds: 60,
      cost: Math.max(1, Math.min(hold, tpmLimit)),
    }),
  ]);
  return !rpm.allowed ? rpm : !tpm.allowed ? tpm : rpm;
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
  started: number;
  inputEstimate: number;
  upstreamRequestId: string | null;
};

function usageRecord(
  adapter: ProviderAdapter,
  call: CallState,
  usage: Usage | null,
  status: UsageRecord["status"],
  httpStatus: number | null,
  estimate?: { outputChars: number },
): UsageRecord {
  const estimated = usage === null && estimate !== undefined;
  return {
    request_id: call.requestId,
    user_id: call.userId,
    provider: adapter.provider,
    model: call.model,
    input_tokens: usage?.inputTokens ?? (estimated ? call.inputEstimate : 0),
    cached_input_tokens: usage?.cachedInputTokens ?? 0,
    output_tokens: usage?.outputTokens ?? (estimated ? Math.ceil(estimate!.outputChars / 4) : 0),
    status,
    http_status: httpStatus,
    latency_ms: Math.round(performance.now() - call.started),
    upstream_request_id: call.upstreamRequestId,
    tokens_estimated: estimated,
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

export function createGatewayHandler(adapter: ProviderAdapter, options: GatewayOptions) {
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

      // Validate.
      requireJson(req);
      const raw = await readRawBody(req, MAX_BODY_BYTES, "text");
      let parsed: unknown;
      try {
        parsed = JSON.parse(raw);
      } catch {
        throw new HttpError("invalid_request", "Body is not valid JSON");
      }
      const body = parseWith(adapter.schema, parsed);
      const { model, stream, requestedMaxOutput, choices } = adapter.describe(body, route);

      const key = optionalEnv(adapter.keyEnv);
      if (!key) {
        throw new HttpError(
          "service_unavailable",
          `${adapter.label} is not configured on the server`,
        );
      }

      // Admit: one round trip decides user, plan, model, price, limits and the hold.
      const call: CallState = {
        requestId: ctx.requestId,
        userId: claims.sub,
        model,
        started: performance.now(),
        inputEstimate: estimateInputTokens(raw.length),
        upstreamRequestId: null,
      };
      const admitNow = () =>
        admit(
          claims.sub,
          adapter,
          model,
          call.requestId,
          call.inputEstimate,
          requestedMaxOutput,
          choices,
          !options.upstashLimits,
          // The hold outlives the call's own timeout; only a call that died leaves it to the sweep.
          Math.ceil(options.totalTimeoutMs / 1000) + 120,
        );
      let admission: Admission;
      let limitHeaders: Record<string, string> = {};
      if (!options.upstashLimits) {
        admission = await admitNow();
        if (admission.outcome !== "ok") throw refuse(admission);
      } else {
        // Upstash counts the windows; with the plan's limits known, at the same time as the admission.
        const known = planLimits.get(claims.sub);
        let counted: Promise<RateLimitResult> | undefined;
        if (known && known.until > Date.now()) {
          const hold = call.inputEstimate +
            Math.min(requestedMaxOutput ?? known.maxOutput, known.maxOutput) * choices;
          counted = upstashLimits(claims.sub, known.rpm, known.tpm, hold);
          counted.catch(() => {});
        }
        admission = await admitNow();
        if (admission.outcome !== "ok") throw refuse(admission);
        rememberPlan(claims.sub, admission);
        let result: RateLimitResult;
        try {
          result = await (counted ??
            upstashLimits(
              claims.sub,
              admission.requests_per_minute!,
              admission.tokens_per_minute!,
              Number(admission.hold_tokens),
            ));
        } catch (e) {
          await db()`select private.gateway_release(${call.requestId})`;
          throw e;
        }
        if (!result.allowed) {
          await db()`select private.gateway_release(${call.requestId})`;
          throw rateLimited(result);
        }
        limitHeaders = rateLimitHeaders(result);
      }

      // Forward.
      const prepared = adapter.prepare(body, route, admission.max_output_tokens!);
      const base = (optionalEnv(adapter.baseUrlEnv) ?? adapter.defaultBaseUrl).replace(/\/+$/, "");
      const settle = (record: UsageRecord) => background(recordUsage(record, log));
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

      let upstream: Response;
      try {
        upstream = await upstreamCall.response;
      } catch (e) {
        upstreamCall.done();
        const reason = upstreamCall.controller.signal.reason;
        const timedOut = reason instanceof DOMException && reason.message === "timeout";
        const cancelled = req.signal.aborted;
        // A provider that timed out or was left by the client may still have read the prompt: bill the input
        // estimate. One that could not be reached at all read nothing.
        settle(
          usageRecord(
            adapter,
            call,
            null,
            timedOut ? "timeout" : cancelled ? "cancelled" : "upstream_error",
            null,
            timedOut || cancelled ? { outputChars: 0 } : undefined,
          ),
        );
        if (timedOut) throw new HttpError("upstream_timeout", `${adapter.label} did not answer in time`);
        log.error("upstream request failed", { error: e instanceof Error ? e : String(e) });
        throw new HttpError("upstream_error", `${adapter.label} could not be reached`);
      }
      call.upstreamRequestId = adapter.requestIdHeader ? upstream.headers.get(adapter.requestIdHeader) : null;
      const headers = responseHeaders(upstream, limitHeaders, adapter.requestIdHeader);

      // The provider refused or failed: its own error, as it sent it; nothing billed.
      if (!upstream.ok || !upstream.body) {
        const text = await upstream.text().catch(() => "");
        upstreamCall.done();
        settle(usageRecord(adapter, call, null, "upstream_error", upstream.status));
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
            usageRecord(adapter, call, null, req.signal.aborted ? "cancelled" : "timeout", upstream.status, {
              outputChars: 0,
            }),
          );
          throw new HttpError("upstream_timeout", `${adapter.label} did not finish in time`);
        }
        upstreamCall.done();
        let usage: Usage | null = null;
        try {
          usage = adapter.usageFromJson(JSON.parse(text));
        } catch { /* not JSON: nothing to meter */ }
        settle(usageRecord(adapter, call, usage, "ok", upstream.status, { outputChars: 0 }));
        return new Response(text, { status: upstream.status, headers });
      }

      const meter = adapter.createStreamMeter(prepared.clientWantsUsage);
      const body$ = meteredStream(upstream.body, meter, (how) => {
        upstreamCall.done();
        const status = how === "complete"
          ? "ok"
          : how === "cancelled"
          ? "cancelled"
          : upstreamCall.controller.signal.aborted
          ? "timeout"
          : "upstream_error";
        if (how === "cancelled") upstreamCall.controller.abort(new DOMException("client", "AbortError"));
        settle(
          usageRecord(adapter, call, meter.usage(), status, upstream.status, {
            outputChars: meter.outputChars(),
          }),
        );
      });
      headers.set("content-type", "text/event-stream; charset=utf-8");
      headers.set("cache-control", "no-cache");
      return new Response(body$, { status: upstream.status, headers });
    },
  );
}
