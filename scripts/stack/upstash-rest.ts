// A local endpoint that speaks the Upstash Redis REST protocol in front of a real Redis.
//
//   deno run --allow-all scripts/stack/upstash-rest.ts
//   env: UPSTASH_PORT (listen on 127.0.0.1), REDIS_PORT (Redis on 127.0.0.1), UPSTASH_TOKEN (bearer token)
//
// What the official clients (@upstash/redis 1.39, @upstash/ratelimit 2.2) send and expect, read from their code:
// - every request is a POST with `Authorization: Bearer <token>` and `Content-Type: application/json`;
//   a single command is `POST /` with a JSON array body, e.g. ["set","k","v","ex",10] (arguments are JSON
//   strings, numbers or booleans); `POST /pipeline` and `POST /multi-exec` take an array of such arrays.
// - the answer to a single command is `{"result": …}`; pipelines and transactions answer an array of
//   `{"result": …}` / `{"error": "…"}`, one per command. A non-2xx answer must be JSON with an `error` field
//   (the client throws `${body.error}, command was: …`).
// - by default the client sends `Upstash-Encoding: base64` and base64-decodes every string in the result
//   (also strings inside arrays), except a top-level "OK": so every string is sent base64-encoded except a
//   top-level "OK" status. Integers stay JSON numbers, nil stays null.
// - it reads `upstash-sync-token` from responses if present (optional; not emitted here).
// - @upstash/ratelimit runs EVALSHA first and falls back to EVAL when the error text contains "NOSCRIPT".
//   Its scripts start with `#!lua flags=allow-key-locking`, an Upstash-only flag that Redis 7 rejects
//   ("Unexpected flag in script shebang"): this endpoint drops Upstash-only flags before Redis sees the
//   script and maps the client's SHA-1 (of the original text) to the SHA-1 of the script Redis stored.
//
// Routes: POST|PUT / (JSON command), POST|PUT /pipeline, POST|PUT /multi-exec, and the path form
// GET|HEAD|POST|PUT /cmd/arg1/arg2 (a non-empty request body becomes the last argument, query parameters
// follow it: /set/k?EX=100 with body v is SET k v EX 100). The token may also be given as `?_token=`.
// Statuses: 400 Redis error on a single command (or EXECABORT) and malformed requests, 401 bad token,
// 404 unknown route, 405 other methods, 413 body over 10 MB, 502 garbled Redis reply, 503 Redis unreachable.
// Commands that would change a pooled connection's state (MULTI, EXEC, WATCH, SELECT, SUBSCRIBE, HELLO, …)
// are refused with an error, as Upstash refuses them over REST.

const MAX_BODY_BYTES = 10 * 1024 * 1024;
const POOL_SIZE = 16;
const SHUTDOWN_GRACE_MS = 5_000;
// Shebang flags that Upstash accepts and open-source Redis does not.
const UPSTASH_ONLY_SCRIPT_FLAGS = new Set(["allow-key-locking"]);
// Commands that would change the state of a pooled connection (or of the protocol on it).
const CONNECTION_STATE_COMMANDS = new Set([
  "AUTH",
  "DISCARD",
  "EXEC",
  "HELLO",
  "MONITOR",
  "MULTI",
  "PSUBSCRIBE",
  "PSYNC",
  "PUNSUBSCRIBE",
  "QUIT",
  "REPLCONF",
  "RESET",
  "SELECT",
  "SSUBSCRIBE",
  "SUBSCRIBE",
  "SUNSUBSCRIBE",
  "SYNC",
  "UNSUBSCRIBE",
  "UNWATCH",
  "WATCH",
]);
const CONNECTION_STATE_CLIENT_SUBCOMMANDS = new Set(["REPLY", "TRACKING", "CACHING"]);

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

// ---------------------------------------------------------------------------------------------------------
// RESP2 client

export class StatusReply {
  constructor(readonly value: string) {}
}

export class ErrorReply {
  constructor(readonly message: string) {}
}

export type Reply = StatusReply | ErrorReply | number | Uint8Array | null | Reply[];

/** Redis cannot be reached, or the connection broke: the HTTP answer is 503. */
export class RedisUnavailableError extends Error {
  override name = "RedisUnavailableError";
}

/** Redis sent something that is not RESP2: the connection is dropped and the HTTP answer is 502. */
export class RedisProtocolError extends Error {
  override name = "RedisProtocolError";
}

const CR = 13;
const LF = 10;

function encodeCommands(commands: Uint8Array[][]): Uint8Array {
  const parts: Uint8Array[] = [];
  let size = 0;
  const push = (part: Uint8Array) => {
    parts.push(part);
    size += part.length;
  };
  const crlf = utf8.encode("\r\n");
  for (const args of commands) {
    push(utf8.encode(`*${args.length}\r\n`));
    for (const arg of args) {
      push(utf8.encode(`$${arg.length}\r\n`));
      push(arg);
      push(crlf);
    }
  }
  const out = new Uint8Array(size);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** One TCP connection to Redis speaking RESP2. Not safe for concurrent use: the pool hands it to one user. */
export class RespConnection {
  #conn: Deno.TcpConn;
  #buf = new Uint8Array(64 * 1024);
  #start = 0;
  #end = 0;
  #closed = false;
  /** Bytes received during the current exec() call. */
  bytesReadInExec = 0;
  /** How many exec() calls completed on this connection. */
  uses = 0;

  private constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
  }

  static async connect(port: number): Promise<RespConnection> {
    let conn: Deno.TcpConn;
    try {
      conn = await Deno.connect({ hostname: "127.0.0.1", port });
    } catch (error) {
      throw new RedisUnavailableError(`cannot connect to Redis at 127.0.0.1:${port}: ${errorText(error)}`);
    }
    try {
      conn.setNoDelay(true);
    } catch {
      // not essential
    }
    return new RespConnection(conn);
  }

  /** Sends all commands in one write (pipelining) and reads one reply per command. */
  async exec(commands: Uint8Array[][]): Promise<Reply[]> {
    this.bytesReadInExec = 0;
    await this.#writeAll(encodeCommands(commands));
    const replies: Reply[] = [];
    for (let i = 0; i < commands.length; i++) replies.push(await this.#readReply());
    this.uses++;
    return replies;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
  }

  async #writeAll(data: Uint8Array): Promise<void> {
    let offset = 0;
    try {
      while (offset < data.length) offset += await this.#conn.write(data.subarray(offset));
    } catch (error) {
      throw new RedisUnavailableError(`writing to Redis failed: ${errorText(error)}`);
    }
  }

  /** Reads more bytes from the socket into the buffer, making room for at least `need` buffered bytes. */
  async #fill(need = 1): Promise<void> {
    const buffered = this.#end - this.#start;
    if (buffered === 0) this.#start = this.#end = 0;
    const required = Math.max(need, buffered + 1);
    if (this.#start + required > this.#buf.length) {
      if (required <= this.#buf.length) {
        this.#buf.copyWithin(0, this.#start, this.#end);
      } else {
        const bigger = new Uint8Array(Math.max(this.#buf.length * 2, required));
        bigger.set(this.#buf.subarray(this.#start, this.#end));
        this.#buf = bigger;
      }
      this.#start = 0;
      this.#end = buffered;
    }
    let n: number | null;
    try {
      n = await this.#conn.read(this.#buf.subarray(this.#end));
    } catch (error) {
      throw new RedisUnavailableError(`reading from Redis failed: ${errorText(error)}`);
    }
    if (n === null) throw new RedisUnavailableError("Redis closed the connection");
    this.#end += n;
    this.bytesReadInExec += n;
  }

  /** Returns one CRLF-terminated line (without the CRLF) as text. */
  async #readLine(): Promise<string> {
    let scanFrom = this.#start;
    while (true) {
      const cr = this.#buf.subarray(scanFrom, this.#end).indexOf(CR);
      if (cr !== -1) {
        const at = scanFrom + cr;
        if (at + 1 < this.#end) {
          if (this.#buf[at + 1] !== LF) throw new RedisProtocolError("expected CRLF in a Redis reply");
          const line = utf8Decoder.decode(this.#buf.subarray(this.#start, at));
          this.#start = at + 2;
          return line;
        }
        scanFrom = at; // CR is the last buffered byte: wait for the LF
      } else {
        scanFrom = this.#end;
      }
      const offset = scanFrom - this.#start;
      await this.#fill(this.#end - this.#start + 1);
      scanFrom = this.#start + offset;
    }
  }

  /** Returns exactly `length` bytes followed by CRLF (a bulk string body), copied out of the buffer. */
  async #readBulk(length: number): Promise<Uint8Array> {
    while (this.#end - this.#start < length + 2) await this.#fill(length + 2);
    const body = this.#buf.slice(this.#start, this.#start + length);
    if (this.#buf[this.#start + length] !== CR || this.#buf[this.#start + length + 1] !== LF) {
      throw new RedisProtocolError("bulk string not terminated by CRLF");
    }
    this.#start += length + 2;
    return body;
  }

  async #readReply(): Promise<Reply> {
    const line = await this.#readLine();
    const rest = line.slice(1);
    switch (line[0]) {
      case "+":
        return new StatusReply(rest);
      case "-":
        return new ErrorReply(rest);
      case ":": {
        const n = Number(rest);
        if (!Number.isFinite(n)) throw new RedisProtocolError(`bad integer reply: ${rest}`);
        return n;
      }
      case "$": {
        const length = parseLength(rest);
        return length < 0 ? null : await this.#readBulk(length);
      }
      case "*": {
        const count = parseLength(rest);
        if (count < 0) return null;
        const items: Reply[] = [];
        for (let i = 0; i < count; i++) items.push(await this.#readReply());
        return items;
      }
      default:
        throw new RedisProtocolError(`unexpected RESP type byte ${JSON.stringify(line.slice(0, 1))}`);
    }
  }
}

function parseLength(text: string): number {
  if (!/^-?\d+$/.test(text)) throw new RedisProtocolError(`bad length in Redis reply: ${text}`);
  return Number(text);
}

/** A small pool: at most `size` connections; waiters queue for a free one. */
export class RedisPool {
  #idle: RespConnection[] = [];
  #all = new Set<RespConnection>();
  #total = 0;
  #waiters: (() => void)[] = [];
  #closed = false;

  constructor(readonly port: number, readonly size: number) {}

  async #acquire(fresh: boolean): Promise<RespConnection> {
    while (true) {
      if (this.#closed) throw new RedisUnavailableError("the endpoint is shutting down");
      if (!fresh) {
        const idle = this.#idle.pop();
        if (idle) return idle;
      } else if (this.#total >= this.size) {
        // Make room for the fresh connection rather than wait for a slot that idle connections hold.
        const idle = this.#idle.pop();
        if (idle) this.#discard(idle);
      }
      if (this.#total < this.size) {
        this.#total++;
        try {
          const conn = await RespConnection.connect(this.port);
          this.#all.add(conn);
          return conn;
        } catch (error) {
          this.#total--;
          this.#wakeOne();
          throw error;
        }
      }
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  #release(conn: RespConnection, reusable: boolean): void {
    if (reusable && !this.#closed) {
      this.#idle.push(conn);
    } else {
      this.#discard(conn);
    }
    this.#wakeOne();
  }

  #discard(conn: RespConnection): void {
    conn.close();
    this.#all.delete(conn);
    this.#total--;
  }

  #wakeOne(): void {
    this.#waiters.shift()?.();
  }

  /**
   * Runs the commands pipelined on one pooled connection. A connection that had been idle may have been
   * closed by Redis (restart, timeout): if it fails before a single reply byte arrived, the commands never
   * ran, so the other idle connections (likely just as stale) are dropped and the commands are tried once
   * more on a fresh connection.
   */
  async exec(commands: Uint8Array[][]): Promise<Reply[]> {
    for (let attempt = 0;; attempt++) {
      const conn = await this.#acquire(attempt > 0);
      const wasIdle = conn.uses > 0;
      try {
        const replies = await conn.exec(commands);
        this.#release(conn, true);
        return replies;
      } catch (error) {
        this.#release(conn, false);
        const stale = error instanceof RedisUnavailableError && wasIdle && conn.bytesReadInExec === 0;
        if (stale && attempt === 0) {
          this.#dropIdle();
          continue;
        }
        throw error;
      }
    }
  }

  #dropIdle(): void {
    for (const conn of this.#idle.splice(0)) this.#discard(conn);
  }

  /** Closes every connection, also those in use (a request blocked on Redis then fails with 503). */
  close(): void {
    this.#closed = true;
    this.#dropIdle();
    for (const conn of this.#all) conn.close();
    for (const wake of this.#waiters.splice(0)) wake();
  }
}

/**
 * MULTI, the commands and EXEC in one write, on a pooled connection checked out for this transaction alone.
 * After EXEC (or EXECABORT) the connection is back in its normal state; if anything fails midway, the pool
 * drops the connection, so no half-open transaction is ever reused. Commands that could leave state behind
 * (MULTI, EXEC, DISCARD, WATCH, SELECT, …) are refused before anything is sent.
 */
function execTransaction(pool: RedisPool, commands: Uint8Array[][]): Promise<Reply[]> {
  return pool.exec([[utf8.encode("MULTI")], ...commands, [utf8.encode("EXEC")]]);
}

// ---------------------------------------------------------------------------------------------------------
// Commands: validation and the Lua script shebang rewrite

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

interface Prepared {
  args: Uint8Array[];
  /** Set when the command must not be sent to Redis; the text is its error. */
  rejected?: string;
  /** Rewrites the reply (SCRIPT LOAD of a rewritten script answers the SHA-1 the client computed). */
  mapReply?: (reply: Reply) => Reply;
}

/** Turns one JSON command (an array of strings, numbers, booleans) into argument bytes. */
function commandFromJson(value: unknown, where: string): Uint8Array[] {
  if (!Array.isArray(value)) throw new HttpError(400, `ERR ${where} must be a JSON array`);
  if (value.length === 0) throw new HttpError(400, `ERR ${where} must not be empty`);
  return value.map((arg: unknown, i) => {
    if (typeof arg === "string") return utf8.encode(arg);
    if (typeof arg === "number" && Number.isFinite(arg)) return utf8.encode(String(arg));
    if (typeof arg === "boolean") return utf8.encode(String(arg));
    throw new HttpError(400, `ERR ${where}: argument ${i} must be a string, number or boolean`);
  });
}

function upper(bytes: Uint8Array | undefined): string {
  return bytes ? utf8Decoder.decode(bytes).toUpperCase() : "";
}

async function sha1Hex(data: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-1", new Uint8Array(data)));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Drops Upstash-only flags from a `#!lua flags=…` first line. Returns null when the script needs no change.
 * The line count stays the same, so Redis error messages keep pointing at the right line.
 */
function rewriteScript(script: Uint8Array): Uint8Array | null {
  if (script[0] !== 0x23 || script[1] !== 0x21) return null; // "#!"
  let eol = script.indexOf(LF);
  if (eol === -1) eol = script.length;
  const shebang = utf8Decoder.decode(script.subarray(0, eol));
  const parts = shebang.split(" ").filter((p) => p !== "");
  if (parts[0] !== "#!lua") return null;
  let changed = false;
  const kept = parts.map((part) => {
    if (!part.startsWith("flags=")) return part;
    const flags = part.slice("flags=".length).split(",").filter((f) => f !== "");
    const remaining = flags.filter((f) => !UPSTASH_ONLY_SCRIPT_FLAGS.has(f));
    if (remaining.length === flags.length) return part;
    changed = true;
    return remaining.length > 0 ? `flags=${remaining.join(",")}` : "";
  }).filter((p) => p !== "");
  if (!changed) return null;
  const head = utf8.encode(kept.join(" "));
  const out = new Uint8Array(head.length + script.length - eol);
  out.set(head);
  out.set(script.subarray(eol), head.length);
  return out;
}

/** SHA-1 the client knows (of its original script) → SHA-1 of the rewritten script Redis stored. */
const shaAliases = new Map<string, string>();
const MAX_SHA_ALIASES = 10_000;

async function rememberRewrite(original: Uint8Array, rewritten: Uint8Array): Promise<string> {
  const [from, to] = await Promise.all([sha1Hex(original), sha1Hex(rewritten)]);
  if (shaAliases.size >= MAX_SHA_ALIASES) shaAliases.clear();
  shaAliases.set(from, to);
  return from;
}

function aliasSha(sha: Uint8Array): Uint8Array {
  const alias = shaAliases.get(utf8Decoder.decode(sha).toLowerCase());
  return alias ? utf8.encode(alias) : sha;
}

async function prepare(args: Uint8Array[]): Promise<Prepared> {
  const name = upper(args[0]);
  if (
    CONNECTION_STATE_COMMANDS.has(name) ||
    (name === "CLIENT" && CONNECTION_STATE_CLIENT_SUBCOMMANDS.has(upper(args[1])))
  ) {
    const shown = name === "CLIENT" ? `CLIENT ${upper(args[1])}` : name;
    return {
      args,
      rejected: `ERR Command is not available over the REST API: '${shown.toLowerCase()}'` +
        (name === "MULTI" || name === "EXEC" ? " (use /multi-exec)" : ""),
    };
  }
  switch (name) {
    case "EVAL":
    case "EVAL_RO": {
      if (args.length < 2) return { args };
      const rewritten = rewriteScript(args[1]);
      if (!rewritten) return { args };
      await rememberRewrite(args[1], rewritten);
      return { args: [args[0], rewritten, ...args.slice(2)] };
    }
    case "EVALSHA":
    case "EVALSHA_RO":
      if (args.length < 2) return { args };
      return { args: [args[0], aliasSha(args[1]), ...args.slice(2)] };
    case "SCRIPT": {
      const sub = upper(args[1]);
      if (sub === "LOAD" && args.length === 3) {
        const rewritten = rewriteScript(args[2]);
        if (!rewritten) return { args };
        const clientSha = await rememberRewrite(args[2], rewritten);
        return {
          args: [args[0], args[1], rewritten],
          mapReply: (reply) => reply instanceof Uint8Array ? utf8.encode(clientSha) : reply,
        };
      }
      if (sub === "EXISTS") return { args: [args[0], args[1], ...args.slice(2).map(aliasSha)] };
      return { args };
    }
    default:
      return { args };
  }
}

// ---------------------------------------------------------------------------------------------------------
// Replies to JSON

function bytesToBase64(bytes: Uint8Array): string {
  let binary = "";
  const chunk = 0x8000;
  for (let i = 0; i < bytes.length; i += chunk) {
    binary += String.fromCharCode(...bytes.subarray(i, i + chunk));
  }
  return btoa(binary);
}

/**
 * RESP reply → JSON value. With base64 on, every string is base64 (the client decodes strings at any depth)
 * except a top-level "OK" status, which the client keeps as is.
 */
function toJson(reply: Reply, base64: boolean, topLevel: boolean): Json {
  if (reply === null || typeof reply === "number") return reply;
  if (reply instanceof Uint8Array) return base64 ? bytesToBase64(reply) : utf8Decoder.decode(reply);
  if (reply instanceof StatusReply) {
    if (!base64 || (topLevel && reply.value === "OK")) return reply.value;
    return bytesToBase64(utf8.encode(reply.value));
  }
  if (reply instanceof ErrorReply) return base64 ? bytesToBase64(utf8.encode(reply.message)) : reply.message;
  return reply.map((item) => toJson(item, base64, false));
}

function entry(reply: Reply, base64: boolean): { result: Json } | { error: string } {
  return reply instanceof ErrorReply ? { error: reply.message } : { result: toJson(reply, base64, true) };
}

// ---------------------------------------------------------------------------------------------------------
// HTTP

function json(status: number, body: Json): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json" },
  });
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** One JSON line per error response or failure, on stderr. */
function log(level: "error" | "warn", fields: Record<string, Json>): void {
  console.error(JSON.stringify({ level, time: new Date().toISOString(), ...fields }));
}

async function timingSafeEqual(a: string, b: string): Promise<boolean> {
  const [da, db] = await Promise.all([
    crypto.subtle.digest("SHA-256", utf8.encode(a)),
    crypto.subtle.digest("SHA-256", utf8.encode(b)),
  ]);
  const x = new Uint8Array(da);
  const y = new Uint8Array(db);
  let diff = a.length === b.length ? 0 : 1;
  for (let i = 0; i < x.length; i++) diff |= x[i] ^ y[i];
  return diff === 0;
}

function presentedToken(req: Request, url: URL): string | null {
  const header = req.headers.get("authorization");
  if (header !== null) {
    const match = /^Bearer\s+(.+)$/i.exec(header.trim());
    return match ? match[1].trim() : null;
  }
  return url.searchParams.get("_token");
}

/** Reads the body, refusing more than MAX_BODY_BYTES whether or not Content-Length is given. */
async function readBody(req: Request): Promise<Uint8Array> {
  const declared = req.headers.get("content-length");
  if (declared !== null && Number(declared) > MAX_BODY_BYTES) {
    await req.body?.cancel().catch(() => {});
    throw new HttpError(413, `ERR request body is larger than ${MAX_BODY_BYTES} bytes`);
  }
  if (!req.body) return new Uint8Array(0);
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  while (true) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > MAX_BODY_BYTES) {
      await reader.cancel().catch(() => {});
      throw new HttpError(413, `ERR request body is larger than ${MAX_BODY_BYTES} bytes`);
    }
    chunks.push(value);
  }
  const body = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.length;
  }
  return body;
}

async function readJson(req: Request): Promise<unknown> {
  const body = await readBody(req);
  try {
    return JSON.parse(utf8Decoder.decode(body));
  } catch (error) {
    throw new HttpError(400, `ERR failed to parse the request body as JSON: ${errorText(error)}`);
  }
}

interface Config {
  port: number;
  redisPort: number;
  token: string;
}

export function createHandler(config: Config, pool: RedisPool): (req: Request) => Promise<Response> {
  async function single(args: Uint8Array[], base64: boolean): Promise<Response> {
    const prepared = await prepare(args);
    if (prepared.rejected) throw new HttpError(400, prepared.rejected);
    const [reply] = await pool.exec([prepared.args]);
    const mapped = prepared.mapReply ? prepared.mapReply(reply) : reply;
    if (mapped instanceof ErrorReply) throw new HttpError(400, mapped.message);
    return json(200, { result: toJson(mapped, base64, true) });
  }

  async function pipeline(body: unknown, base64: boolean): Promise<Response> {
    if (!Array.isArray(body)) {
      throw new HttpError(400, "ERR the pipeline body must be a JSON array of commands");
    }
    if (body.length === 0) throw new HttpError(400, "ERR the pipeline is empty");
    const prepared = await Promise.all(body.map((c, i) => prepare(commandFromJson(c, `command ${i}`))));
    const toSend = prepared.filter((p) => !p.rejected);
    const replies = toSend.length > 0 ? await pool.exec(toSend.map((p) => p.args)) : [];
    let next = 0;
    return json(
      200,
      prepared.map((p) => {
        if (p.rejected) return { error: p.rejected };
        const reply = replies[next++];
        return entry(p.mapReply ? p.mapReply(reply) : reply, base64);
      }),
    );
  }

  async function multiExec(body: unknown, base64: boolean): Promise<Response> {
    if (!Array.isArray(body)) {
      throw new HttpError(400, "ERR the transaction body must be a JSON array of commands");
    }
    if (body.length === 0) throw new HttpError(400, "ERR the transaction is empty");
    const prepared = await Promise.all(body.map((c, i) => prepare(commandFromJson(c, `command ${i}`))));
    const rejected = prepared.find((p) => p.rejected);
    if (rejected?.rejected) throw new HttpError(400, rejected.rejected);
    const replies = await execTransaction(pool, prepared.map((p) => p.args));
    const exec = replies[replies.length - 1];
    if (exec instanceof ErrorReply) {
      // EXECABORT: a command could not be queued; say which.
      const queued = replies.slice(1, -1);
      const cause = queued.find((r): r is ErrorReply => r instanceof ErrorReply);
      throw new HttpError(400, cause ? `${exec.message} ${cause.message}` : exec.message);
    }
    if (!Array.isArray(exec)) throw new RedisProtocolError("EXEC did not answer an array");
    return json(200, exec.map((reply, i) => entry(prepared[i].mapReply?.(reply) ?? reply, base64)));
  }

  return async function handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    try {
      const method = req.method;
      if (!["GET", "HEAD", "POST", "PUT"].includes(method)) {
        throw new HttpError(405, `ERR method ${method} is not allowed`);
      }
      const token = presentedToken(req, url);
      if (token === null || !(await timingSafeEqual(token, config.token))) {
        throw new HttpError(401, "Unauthorized");
      }
      const base64 = req.headers.get("upstash-encoding")?.toLowerCase() === "base64";
      const hasBody = method === "POST" || method === "PUT";
      const path = url.pathname;

      if (path === "/" || path === "") {
        if (!hasBody) {
          throw new HttpError(404, "ERR no command given: POST a JSON array or use /command/args");
        }
        return await single(commandFromJson(await readJson(req), "the command"), base64);
      }
      if (path === "/pipeline" || path === "/multi-exec") {
        if (!hasBody) throw new HttpError(405, `ERR ${path} takes a POST with a JSON array of commands`);
        const body = await readJson(req);
        return path === "/pipeline" ? await pipeline(body, base64) : await multiExec(body, base64);
      }

      // Path form: /command/arg1/arg2…
      const segments = path.slice(1).split("/");
      if (segments.length > 1 && segments[segments.length - 1] === "") segments.pop();
      let decoded: string[];
      try {
        decoded = segments.map((s) => decodeURIComponent(s));
      } catch {
        throw new HttpError(400, "ERR malformed percent-encoding in the path");
      }
      const reserved = ["pipeline", "multi-exec"].includes(decoded[0]);
      if (reserved || !/^[A-Za-z][A-Za-z0-9_.|-]*$/.test(decoded[0])) {
        throw new HttpError(404, `ERR no such route: ${path}`);
      }
      const args: Uint8Array[] = decoded.map((s) => utf8.encode(s));
      if (hasBody) {
        const body = await readBody(req);
        if (body.length > 0) args.push(body);
      }
      for (const [key, value] of url.searchParams) {
        if (key === "_token") continue;
        args.push(utf8.encode(key));
        if (value !== "") args.push(utf8.encode(value));
      }
      return await single(args, base64);
    } catch (error) {
      let status = 500;
      let message = `ERR internal error: ${errorText(error)}`;
      if (error instanceof HttpError) {
        status = error.status;
        message = error.message;
      } else if (error instanceof RedisUnavailableError) {
        status = 503;
        message = `ERR Redis is unavailable: ${error.message}`;
      } else if (error instanceof RedisProtocolError) {
        status = 502;
        message = `ERR bad reply from Redis: ${error.message}`;
      }
      log(status >= 500 ? "error" : "warn", {
        status,
        method: req.method,
        path: url.pathname,
        error: message,
      });
      await req.body?.cancel().catch(() => {});
      return json(status, { error: message });
    }
  };
}

// ---------------------------------------------------------------------------------------------------------
// Main

function portFromEnv(name: string): number {
  const raw = Deno.env.get(name);
  const port = Number(raw);
  if (!raw || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new Error(`${name} must be a TCP port number (got ${JSON.stringify(raw ?? null)})`);
  }
  return port;
}

function configFromEnv(): Config {
  const token = Deno.env.get("UPSTASH_TOKEN") ?? "";
  if (token === "") throw new Error("UPSTASH_TOKEN must be set");
  return { port: portFromEnv("UPSTASH_PORT"), redisPort: portFromEnv("REDIS_PORT"), token };
}

async function main(): Promise<void> {
  let config: Config;
  try {
    config = configFromEnv();
  } catch (error) {
    log("error", { msg: "bad configuration", error: errorText(error) });
    Deno.exit(2);
  }
  const pool = new RedisPool(config.redisPort, POOL_SIZE);
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: config.port,
    onListen: ({ hostname, port }) => {
      console.log(JSON.stringify({
        level: "info",
        time: new Date().toISOString(),
        msg: "upstash REST endpoint listening",
        url: `http://${hostname}:${port}`,
        redis: `127.0.0.1:${config.redisPort}`,
      }));
    },
    onError: (error) => {
      log("error", { msg: "unhandled error in request handler", error: errorText(error) });
      return json(500, { error: "ERR internal error" });
    },
  }, createHandler(config, pool));

  let stopping = false;
  const stop = (signal: Deno.Signal) => {
    if (stopping) return;
    stopping = true;
    console.log(
      JSON.stringify({ level: "info", time: new Date().toISOString(), msg: "shutting down", signal }),
    );
    // Requests in flight get SHUTDOWN_GRACE_MS to finish; after that, closing Redis connections ends them.
    const timer = setTimeout(() => pool.close(), SHUTDOWN_GRACE_MS);
    server.shutdown().finally(() => {
      clearTimeout(timer);
      pool.close();
    });
  };
  const onTerm = () => stop("SIGTERM");
  const onInt = () => stop("SIGINT");
  Deno.addSignalListener("SIGTERM", onTerm);
  Deno.addSignalListener("SIGINT", onInt);
  await server.finished;
  pool.close();
  Deno.removeSignalListener("SIGTERM", onTerm);
  Deno.removeSignalListener("SIGINT", onInt);
  console.log(JSON.stringify({ level: "info", time: new Date().toISOString(), msg: "stopped" }));
}

if (import.meta.main) await main();
