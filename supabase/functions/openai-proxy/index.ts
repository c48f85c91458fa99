// openai-proxy — OpenAI through the gateway (see _shared/gateway): POST /functions/v1/openai-proxy/v1/chat/completions,
// /v1/responses and /v1/embeddings (metered), and GET /v1/models (the user's models, from the database).
import { createGatewayHandler } from "../_shared/gateway/handler.ts";
import { createModelsHandler, isModelsRequest } from "../_shared/gateway/models.ts";
import { gatewayOptionsFromEnv } from "../_shared/gateway/options.ts";
import { openai } from "../_shared/gateway/providers/openai.ts";

const gateway = createGatewayHandler(openai, gatewayOptionsFromEnv());
const models = createModelsHandler(openai.functionName, openai.provider);

Deno.serve((req) => isModelsRequest(req, openai.functionName) ? models(req) : gateway(req));
