// POST /functions/v1/google-proxy/v1beta/models/{model}:generateContent and :streamGenerateContent?alt=sse — Gemini through the gateway (see _shared/gateway).
import { createGatewayHandler, gatewayOptionsFromEnv } from "../_shared/gateway/proxy.ts";
import { gemini } from "../_shared/gateway/providers/gemini.ts";

Deno.serve(createGatewayHandler(gemini, gatewayOptionsFromEnv()));
