// The routes of the Auth stand-in (the paths of Supabase Auth, which the gateway reaches with /auth/v1
// stripped), and the one place a request becomes a response: the handler's answer, or its error rendered in
// the format the client asked for. Unknown paths are 404 and wrong methods 405, as Auth's router answers.
import type { AuthService, Call, Handler } from "./context.ts";
import { errorResponse, requestedApiVersion } from "./errors.ts";
import { clientIp } from "./http.ts";
import {
  adminCreateUser,
  adminDeleteUser,
  adminGetUser,
  adminListUsers,
  adminUpdateUser,
} from "./handlers/admin.ts";
import { logout } from "./handlers/logout.ts";
import { health, settings } from "./handlers/meta.ts";
import { signup } from "./handlers/signup.ts";
import { token } from "./handlers/token.ts";
import { getUser, updateUser } from "./handlers/user.ts";

type Route = { method: string; path: RegExp; handler: Handler };

const ROUTES: Route[] = [
  { method: "GET", path: /^\/health$/, handler: health },
  { method: "GET", path: /^\/settings$/, handler: settings },
  { method: "POST", path: /^\/signup$/, handler: signup },
  { method: "POST", path: /^\/token$/, handler: token },
  { method: "POST", path: /^\/logout$/, handler: logout },
  { method: "GET", path: /^\/user$/, handler: getUser },
  { method: "PUT", path: /^\/user$/, handler: updateUser },
  { method: "GET", path: /^\/admin\/users$/, handler: adminListUsers },
  { method: "POST", path: /^\/admin\/users$/, handler: adminCreateUser },
  { method: "GET", path: /^\/admin\/users\/(?<id>[^/]+)$/, handler: adminGetUser },
  { method: "PUT", path: /^\/admin\/users\/(?<id>[^/]+)$/, handler: adminUpdateUser },
  { method: "DELETE", path: /^\/admin\/users\/(?<id>[^/]+)$/, handler: adminDeleteUser },
];

// Browsers may read these from an answer (the gateway adds the rest of CORS).
const EXPOSED_HEADERS = "X-Total-Count, Link, X-Supabase-Api-Version";

export function router(service: AuthService) {
  return async (req: Request, info: Deno.ServeHandlerInfo<Deno.NetAddr>): Promise<Response> => {
    const started = performance.now();
    const url = new URL(req.url);
    const response = await route(service, req, url, info.remoteAddr.hostname);
    response.headers.set("access-control-expose-headers", EXPOSED_HEADERS);
    service.log("info", "request", {
      method: req.method,
      path: url.pathname,
      status: response.status,
      duration_ms: Math.round(performance.now() - started),
    });
    return response;
  };
}

async function route(service: AuthService, req: Request, url: URL, peer: string): Promise<Response> {
  const matches = ROUTES.map((r) => ({ route: r, match: url.pathname.match(r.path) })).filter((m) => m.match);
  if (matches.length === 0) return new Response("404 page not found\n", { status: 404 });
  const found = matches.find((m) => m.route.method === req.method);
  if (!found) return new Response(null, { status: 405 });

  const call: Call = {
    req,
    url,
    params: { ...found.match!.groups },
    client: { ip: clientIp(req, peer), userAgent: req.headers.get("user-agent") },
  };
  try {
    return await found.route.handler(service, call);
  } catch (error) {
    return errorResponse(error, requestedApiVersion(req), (unexpected) => {
      service.log("error", "unexpected failure", { path: url.pathname, error: String(unexpected) });
    });
  }
}
