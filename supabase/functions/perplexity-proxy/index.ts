// POST /functions/v1/perplexity-proxy/chat/completions — Perplexity through the gateway (see _shared/gateway).
import { createGatewayHandler } from "../_shared/gateway/handler.ts";
import { gatewayOptionsFromEnv } from "../_shared/gateway/options.ts";
import { perplexity } from "../_shared/gateway/providers/perplexity.ts";

Deno.serve(createGatewayHandler(perplexity, gatewayOptionsFromEnv()));
