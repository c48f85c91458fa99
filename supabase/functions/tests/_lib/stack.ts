// Where the running local stack is. scripts/test/run.sh exports these from `npm run status -- -o env`.
function required(name: string): string {
  const value = Deno.env.get(name);
  if (!value) throw new Error(`${name} is not set: run the tests with npm test (it exports the stack's env)`);
  return value;
}

export const stack = {
  apiUrl: required("API_URL"),
  functionsUrl: `${required("API_URL")}/functions/v1`,
  dbUrl: required("DB_URL"),
  jwtSecret: required("JWT_SECRET"),
  anonKey: required("ANON_KEY"),
  serviceRoleKey: required("SERVICE_ROLE_KEY"),
  jwksUrl: required("JWKS_URL"),
  redisUrl: required("REDIS_URL"),
  upstashUrl: required("UPSTASH_REDIS_REST_URL"),
  upstashToken: required("UPSTASH_REDIS_REST_TOKEN"),
  keysFile: required("KEYS_FILE"),
};
