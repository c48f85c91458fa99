// bench:db's load on the cached marketplace endpoint (GET /functions/v1/marketplace with the anon key), with
// autocannon: requests/s and latency of a listing served from the cache (the same key every request, so every
// one after the first is a Redis hit) and uncached (a new cache key every request: the search "pipeline" with a
// negated term no employee has, so each request is a miss that runs list_ai_employees, same rows as "pipeline").
// node scripts/bench/db/marketplace-load.mjs <api url> <anon key> <connections> <seconds>; prints JSON lines.
import autocannon from "autocannon";

const [apiUrl, anonKey, connections = "16", seconds = "10"] = process.argv.slice(2);
const base = `${apiUrl}/functions/v1/marketplace`;
const headers = { apikey: anonKey, authorization: `Bearer ${anonKey}` };

async function xCache(path) {
  const res = await fetch(`${apiUrl}${path}`, { headers });
  await res.arrayBuffer();
  return `${res.status} ${res.headers.get("x-cache")}`;
}

const scenarios = [
  { name: "first page, cached", path: "/functions/v1/marketplace" },
  { name: "search, cached", path: "/functions/v1/marketplace?q=pipeline" },
  {
    name: "search, uncached (a miss per request)",
    path: "/functions/v1/marketplace?q=pipeline",
    unique: true,
  },
];
let counter = 0;
for (const s of scenarios) {
  const before = s.unique ? "miss by construction" : `${await xCache(s.path)} then ${await xCache(s.path)}`;
  const result = await autocannon({
    url: base,
    connections: Number(connections),
    duration: Number(seconds),
    headers,
    requests: [{
      method: "GET",
      setupRequest: (req) => {
        req.path = s.unique ? `${s.path}%20-zzbench${process.pid}x${counter++}` : s.path;
        return req;
      },
    }],
  });
  console.log(JSON.stringify({
    name: s.name,
    connections: Number(connections),
    requestsPerSecond: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    requests: result.requests.total,
    non2xx: result.non2xx,
    errors: result.errors,
    xCache: before,
  }));
}
