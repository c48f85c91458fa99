// POST /functions/v1/anthropic-proxy/v1/messages — Anthropic through the gateway (see _shared/gateway).
import { createGatewayHandler, gatewayOptionsFromEnv } from "../_shared/gateway/proxy.ts";
import { anthropic } from "../_shared/gateway/providers/anthropic.ts";

Deno.serve(createGatewayHandler(anthropic, gatewayOptionsFromEnv()));
