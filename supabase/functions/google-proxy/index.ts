// POST /functions/v1/google-proxy/v1beta/models/{model}:generateContent and :streamGenerateContent?alt=sse —
// Google (Gemini API) through the gateway (see _shared/gateway).
import { createGatewayHandler } from "../_shared/gateway/handler.ts";
import { gatewayOptionsFromEnv } from "../_shared/gateway/options.ts";
import { google } from "../_shared/gateway/providers/google.ts";

Deno.serve(createGatewayHandler(google, gatewayOptionsFromEnv()));
