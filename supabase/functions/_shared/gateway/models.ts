// GET /v1/models of a proxy: the models a user may call there, in OpenAI's list shape ({object: "list", data:
// [{id, object: "model", created, owned_by}]}), from the database (private.gateway_models: the provider's models
// with a price in force that the user's plan allows) and never forwarded. The user comes from the token only.
import { HttpError } from "../http/errors.ts";
import { type RequestContext, withHttp } from "../http/with-http.ts";
import { db } from "../platform/db.ts";
import { callerClaims } from "./parse.ts";
import type { Provider } from "./providers/adapter.ts";

export type ModelList = {
  object: "list";
  data: { id: string; object: "model"; created: number; owned_by: string }[];
};

/** The models `userId` may call on `provider` now (private.gateway_models); 401 for a user without a row. */
export async function modelsFor(userId: string, provider: Provider): Promise<ModelList> {
  const [{ models }] = await db()<{ models: { id: string; created: number }[] | null }[]>`
    select private.gateway_models(${userId}, ${provider}) as models`;
  if (models === null) throw new HttpError("unauthorized", "Unknown user");
  return {
    object: "list",
    data: models.map((m) => ({ id: m.id, object: "model", created: Number(m.created), owned_by: provider })),
  };
}

/** The GET /v1/models handler of a proxy function. */
export function createModelsHandler(functionName: string, provider: Provider) {
  return withHttp({ name: functionName, methods: ["GET"] }, async (req: Request, ctx: RequestContext) => {
    const claims = await callerClaims(req, ctx.log);
    return Response.json(await modelsFor(claims.sub, provider));
  });
}

/** Whether a request to a proxy function asks for its model list (GET or HEAD …/v1/models). */
export const isModelsRequest = (req: Request, functionName: string) =>
  (req.method === "GET" || req.method === "HEAD") &&
  new URL(req.url).pathname.replace(new RegExp(`^.*?/${functionName}`), "") === "/v1/models";
