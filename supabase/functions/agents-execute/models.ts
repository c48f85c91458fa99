// The employee's model as an AI SDK model whose every request goes through the gateway pipeline in-process
// (createInProcessGateway: the proxies' admission, hold, limits, settlement and metering; no HTTP hop): the
// provider SDK is given the user's token as its API key and a fetch that hands the request it built to the
// gateway of that provider, with the run's user (verified when it started), session and run beside it.
import { createAnthropic } from "npm:@ai-sdk/anthropic@4.0.105";
import { createGoogleGenerativeAI } from "npm:@ai-sdk/google@4.0.121";
import { createOpenAI } from "npm:@ai-sdk/openai@4.0.118";
import { createPerplexity } from "npm:@ai-sdk/perplexity@4.0.49";
import type { LanguageModel } from "npm:ai@7.0.173";
import { createInProcessGateway, type InProcessCall } from "../_shared/gateway/handler.ts";
import { gatewayOptionsFromEnv } from "../_shared/gateway/options.ts";
import { anthropic } from "../_shared/gateway/providers/anthropic.ts";
import type { Provider, ProviderAdapter } from "../_shared/gateway/providers/adapter.ts";
import { google } from "../_shared/gateway/providers/google.ts";
import { openai } from "../_shared/gateway/providers/openai.ts";
import { perplexity } from "../_shared/gateway/providers/perplexity.ts";
import { HttpError } from "../_shared/http/errors.ts";

const ADAPTERS: Record<Provider, ProviderAdapter> = {
  openai: openai as unknown as ProviderAdapter,
  anthropic: anthropic as unknown as ProviderAdapter,
  google: google as unknown as ProviderAdapter,
  perplexity: perplexity as unknown as ProviderAdapter,
};

/** Where each provider's SDK thinks its API is: the proxy's path, as routeOf reads it. */
const SDK_BASE: Record<Provider, string> = {
  openai: "/v1",
  anthropic: "/v1",
  google: "/v1beta",
  perplexity: "",
};

type Gateway = ReturnType<typeof createInProcessGateway>;
const gateways = new Map<Provider, Gateway>();

function gatewayFor(provider: Provider): Gateway {
  let g = gateways.get(provider);
  if (!g) {
    g = createInProcessGateway(ADAPTERS[provider], gatewayOptionsFromEnv());
    gateways.set(provider, g);
  }
  return g;
}

export const isProvider = (p: string): p is Provider => p in ADAPTERS;

/** A fetch for a provider's SDK: each request goes to that provider's gateway in-process, as the user. */
export function gatewayFetch(provider: Provider, call: () => InProcessCall): typeof fetch {
  const gateway = gatewayFor(provider);
  return (input, init) => gateway(new Request(input, init), call());
}

/** The base URL a provider SDK is given (any host: the fetch never leaves the process). */
export const sdkBaseUrl = (provider: Provider) =>
  `http://gateway.in-process/${ADAPTERS[provider].functionName}${SDK_BASE[provider]}`;

/** A call to a provider's proxy path as the user (the tools' web search). */
export function callProviderAs(userToken: string, call: () => InProcessCall) {
  return (provider: Provider, path: string, body: unknown, signal?: AbortSignal): Promise<Response> =>
    gatewayFetch(provider, call)(`${sdkBaseUrl(provider).replace(/\/v1(beta)?$/, "")}${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${userToken}`, "content-type": "application/json" },
      body: JSON.stringify(body),
      signal,
    });
}

/**
 * The employee's model through the gateway. OpenAI models use the Responses API when the version's settings say
 * `"openai_api": "responses"`, else Chat Completions.
 */
export function modelFor(
  provider: string,
  model: string,
  settings: Record<string, unknown>,
  userToken: string,
  call: () => InProcessCall,
): LanguageModel {
  if (!isProvider(provider)) throw new HttpError("internal_error", `Unknown provider ${provider}`);
  const options = { apiKey: userToken, baseURL: sdkBaseUrl(provider), fetch: gatewayFetch(provider, call) };
  switch (provider) {
    case "openai": {
      const o = createOpenAI(options);
      return settings.openai_api === "responses" ? o.responses(model) : o.chat(model);
    }
    case "anthropic":
      return createAnthropic(options)(model);
    case "google":
      return createGoogleGenerativeAI(options)(model);
    case "perplexity":
      return createPerplexity(options)(model);
  }
}
