// POST /functions/v1/perplexity-proxy/chat/completions — Perplexity through the gateway (see _shared/gateway).
import { createGatewayHandler, gatewayOptionsFromEnv } from "../_shared/gateway/proxy.ts";
import { perplexity } from "../_shared/gateway/providers/perplexity.ts";

Deno.serve(createGatewayHandler(perplexity, gatewayOptionsFromEnv()));
