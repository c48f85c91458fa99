// POST /functions/v1/openai-proxy/v1/chat/completions — OpenAI through the gateway (see _shared/gateway).
import { createGatewayHandler } from "../_shared/gateway/handler.ts";
import { gatewayOptionsFromEnv } from "../_shared/gateway/options.ts";
import { openai } from "../_shared/gateway/providers/openai.ts";

Deno.serve(createGatewayHandler(openai, gatewayOptionsFromEnv()));
