// GET /functions/v1/health — is the service able to serve? Checks Postgres and Redis.
// 200 when every configured dependency answers, 503 when one is down. Never shows internals.
import { json } from "../_shared/http/respond.ts";
import { withHttp } from "../_shared/http/with-http.ts";
import { checkDatabase } from "../_shared/platform/db.ts";
import { checkRedis } from "../_shared/platform/redis.ts";

Deno.serve(withHttp({ name: "health", methods: ["GET"] }, async () => {
  const [database, redis] = await Promise.all([checkDatabase(), checkRedis()]);
  const healthy = database.status === "ok" && redis.status !== "down";
  return json(
    { status: healthy ? "ok" : "degraded", checks: { database, redis }, time: new Date().toISOString() },
    { status: healthy ? 200 : 503 },
  );
}));
