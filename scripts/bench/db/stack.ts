// The stack's addresses and keys for bench:db (npm run status), and the two connections PostgREST's shape needs.
import { projectJwt, readKeys } from "../../stack/keys-file.ts";

export const ROOT = new URL("../../..", import.meta.url).pathname;
export const progress = (msg: string) => console.error(`[bench:db] ${msg}`);

export type Stack = {
  dbUrl: string;
  apiUrl: string;
  anonKey: string;
  /** The Data API stand-in itself, without the gateway hop. */
  restServiceUrl: string;
  /** Signs a user's access token with the stack's key. */
  sign: (sub: string) => Promise<string>;
};

export async function readStack(): Promise<Stack> {
  const out = await new Deno.Command("bash", { args: [`${ROOT}scripts/stack/status.sh`, "-o", "env"] })
    .output();
  const env = Object.fromEntries(
    new TextDecoder().decode(out.stdout).split("\n").filter(Boolean).map((l) => {
      const i = l.indexOf("=");
      return [l.slice(0, i), l.slice(i + 1)];
    }),
  );
  if (!env.DB_URL) throw new Error("the stack is not running (npm start)");
  const keys = await readKeys(`${Deno.env.get("STACK_DIR") ?? `${ROOT}.stack`}/keys.json`);
  const jwt = projectJwt(keys);
  return {
    dbUrl: env.DB_URL,
    apiUrl: env.API_URL,
    anonKey: env.ANON_KEY,
    restServiceUrl: `http://127.0.0.1:${Deno.env.get("REST_PORT") ?? 54341}`,
    sign: (sub) => jwt.sign({ sub, role: "authenticated", aud: "authenticated", exp: 2e9 }),
  };
}

/** PostgREST's own connection: the authenticator role, which gains privileges only through `set local role`. */
export const authenticatorUrl = (dbUrl: string) =>
  dbUrl.replace(/\/\/[^:]+:[^@]+@/, "//authenticator:postgres@");
