// Where the running local stack is. scripts/test/run.sh exports these from `npm run status -- -o env`.
function required(name: string): string {
  const value = Deno.env.get(name);
  if (!value) throw new Error(`${name} is not set: run the tests with npm test (it exports the stack's env)`);
  return value;
}

// TEST_API_URL: the functions server that npm test runs with supabase/functions/tests/.env.test.
const apiUrl = Deno.env.get("TEST_API_URL") ?? required("API_URL");

export const stack = {
  apiUrl,
  functionsUrl: `${apiUrl}/functions/v1`,
  dbUrl: required("DB_URL"),
  jwtSecret: required("JWT_SECRET"),
  anonKey: required("ANON_KEY"),
  serviceRoleKey: required("SERVICE_ROLE_KEY"),
  jwksUrl: `${apiUrl}/auth/v1/.well-known/jwks.json`,
  redisUrl: required("REDIS_URL"),
  upstashUrl: required("UPSTASH_REDIS_REST_URL"),
  upstashToken: required("UPSTASH_REDIS_REST_TOKEN"),
  keysFile: required("KEYS_FILE"),
};
