// GET /v1/models of a proxy: the models a user may call there, in OpenAI's list shape ({object: "list", data:
// [{id, object: "model", created, owned_by}]}), from the database and never forwarded: those of the provider
// with a price in force now (a model without one could not be billed, so the gateway refuses it) that the
// user's plan allows (every priced model when its allowed_models is empty). The user comes from the token only.
import { HttpError } from "../http/errors.ts";
import { type RequestContext, withHttp } from "../http/with-http.ts";
import { db } from "../platform/db.ts";
import { callerClaims } from "./parse.ts";
import type { Provider } from "./providers/adapter.ts";

export type ModelList = {
  object: "list";
  data: { id: string; object: "model"; created: number; owned_by: string }[];
};

/** The models `userId` may call on `provider` now; 401 when the user has no row (a deleted user's token). */
export async function modelsFor(userId: string, provider: Provider): Promise<ModelList> {
  const rows = await db()<{ id: string; created: number }[]>`
    select m.model as id, extract(epoch from m.effective_from)::int8::int4 as created
      from public.users u
      join public.subscription_plans p on p.id = u.plan
      join public.model_pricing m
        on m.provider = ${provider}
       and m.effective_from <= now() and (m.effective_to is null or m.effective_to > now())
       and (cardinality(p.allowed_models) = 0 or m.model = any (p.allowed_models))
     where u.id = ${userId}
     order by m.model`;
  if (rows.length === 0) {
    const [known] = await db()`select 1 from public.users where id = ${userId}`;
    if (!known) throw new HttpError("unauthorized", "Unknown user");
  }
  return {
    object: "list",
    data: rows.map((r) => ({ id: r.id, object: "model", created: Number(r.created), owned_by: provider })),
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
