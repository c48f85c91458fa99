// POST /functions/v1/anthropic-proxy/v1/messages — Anthropic through the gateway (see _shared/gateway).
import { createGatewayHandler } from "../_shared/gateway/handler.ts";
import { gatewayOptionsFromEnv } from "../_shared/gateway/options.ts";
import { anthropic } from "../_shared/gateway/providers/anthropic.ts";

Deno.serve(createGatewayHandler(anthropic, gatewayOptionsFromEnv()));
