// A fake of the Stripe API endpoints our functions call, on 127.0.0.1:12111 (STRIPE_API_BASE in
// tests/.env.test), speaking Stripe's wire format so the real SDK is the client:
//
//   POST /v1/customers                   → customer        (cus_…)
//   GET  /v1/customers/:id               → customer, or 404 resource_missing
//   POST /v1/checkout/sessions           → checkout.session (cs_test_…), url https://checkout.stripe.com/c/pay/<id>
//   POST /v1/billing_portal/sessions     → billing_portal.session (bps_…), url https://billing.stripe.com/p/session/<id>
//   GET  /v1/invoices/:id/lines          → a list page of an invoice's line items (seeded by `seedInvoiceLines`),
//                                          `limit` (1-100, default 10) and `starting_after`, or 404
//
// As Stripe does: bodies (and GET queries) are application/x-www-form-urlencoded with bracket notation,
// parsed here into nested objects whose leaves stay strings (`line_items[0][quantity]=1` →
// `{ line_items: [{ quantity: "1" }] }`); `Authorization: Bearer sk_…` (or Basic with the key as user) else
// 401; unknown parameters are a 400 parameter_unknown; every error is `{ error: { type, message, … } }`;
// every response carries Request-Id and Stripe-Version. Idempotency-Key (POST only, per API key): the first
// successful answer is stored; the same key with the same endpoint and parameters replays it with
// `Idempotent-Replayed: true` (and Original-Request); with other parameters or another endpoint it is a 400
// idempotency_error; while the first is still running it is a 409 (the SDK retries those). Errors are not
// stored, like Stripe's validation errors.
//
// For tests: every request is recorded (`requests`, `requestsTo`) with its parsed params, headers and
// idempotency key, and the status it got; `fail()` injects a fault into the next N requests (an error
// status, a delay before processing, or both); `seedCustomer()` adds a customer that "already exists".
//
//   await using fake = await startFakeStripe();   // or try { … } finally { await fake.stop(); }
//   fake.fail({ times: 3, status: 500 });             // Stripe is down for the next three requests

export const FAKE_STRIPE_PORT = 12111;
/** The API version answered when the request does not name one (the one stripe@23.1.0 pins). */
export const FAKE_STRIPE_API_VERSION = "2026-10-28.endive";
/** The message of an injected 500, so tests can check it never reaches a client. */
export const FAKE_STRIPE_500_MESSAGE =
  "Sorry, something went wrong (fake-stripe internal ERR_FAKE_STRIPE_500). We've already been notified.";

export type Params = { [key: string]: Param };
export type Param = string | Params | Param[];

export type RecordedRequest = {
  readonly method: string;
  readonly path: string;
  /** The parsed form body (POST) or query (GET); leaves are strings, as on the wire. */
  readonly params: Params;
  /** Request headers, lower-case names. */
  readonly headers: Readonly<Record<string, string>>;
  readonly idempotencyKey: string | null;
  readonly receivedAt: number;
  /** The status answered (0 until answered). */
  status: number;
  /** True when the answer was an idempotent replay of an earlier one. */
  replayed: boolean;
  /** The JSON body answered (a Stripe object or `{ error }`). */
  response: unknown;
};

export type Fault = {
  /** How many of the next matching requests it applies to (default 1; Infinity until `clearFaults()`). */
  times?: number;
  /** Answer with this status and a Stripe error body instead of processing (e.g. 500, 503, 429). */
  status?: number;
  /** Wait this long first (with a status: before failing; without: before processing, as a slow Stripe). */
  delayMs?: number;
  /** Error body for `status` (default: Stripe's shape; api_error for 5xx). */
  body?: unknown;
  /** Extra response headers, e.g. `{ "stripe-should-retry": "false" }`. */
  headers?: Record<string, string>;
  /** Only requests whose path equals this string or matches this pattern. */
  path?: string | RegExp;
};

export type FakePrice = { unit_amount: number; currency: string; recurring?: { interval: "month" | "year" } };

export type FakeStripeOptions = {
  port?: number;
  hostname?: string;
  /** Accept only this secret key; default any key that looks like one (sk_… or rk_…). */
  apiKey?: string;
  /** Known prices, for the amounts of sessions using `line_items[][price]`; others are accepted, no amounts. */
  prices?: Record<string, FakePrice>;
};

type Json = Record<string, unknown>;
type Answer = { status: number; body: Json; headers?: Record<string, string> };
type Stored = { endpoint: string; fingerprint: string; answer?: Answer; requestId: string };

class StripeFormError extends Error {
  constructor(readonly param: string, message: string) {
    super(message);
  }
}

// ------------------------------------------------------------------------------------ wire format

/**
 * Parses Stripe's form encoding (`a[b][0][c]=v`, `expand[]=x`) into nested objects and arrays; leaves are
 * strings. Objects whose keys are all indexes become arrays, in index order.
 */
export function parseStripeForm(input: string | URLSearchParams): Params {
  const root: Params = {};
  for (const [key, value] of new URLSearchParams(input)) {
    const m = /^([^[\]]+)((?:\[[^[\]]*\])*)$/.exec(key);
    if (!m) throw new StripeFormError(key, `Invalid parameter name: ${key}`);
    const path = [m[1], ...[...m[2].matchAll(/\[([^[\]]*)\]/g)].map((x) => x[1])];
    let node: Params = root;
    for (let i = 0; i < path.length; i++) {
      const last = i === path.length - 1;
      const segment = path[i] === "" ? String(Object.keys(node).length) : path[i];
      if (last) {
        if (typeof node[segment] === "object") {
          throw new StripeFormError(path[0], `Invalid hash: ${key} is both a value and a hash`);
        }
        node[segment] = value;
      } else {
        const next = node[segment] ?? {};
        if (typeof next !== "object") {
          throw new StripeFormError(path[0], `Invalid hash: ${key} is both a value and a hash`);
        }
        node[segment] = next;
        node = next as Params;
      }
    }
  }
  return arraysFromIndexes(root) as Params;
}

function arraysFromIndexes(value: Param): Param {
  if (typeof value === "string" || Array.isArray(value)) return value;
  const entries = Object.entries(value).map(([k, v]) => [k, arraysFromIndexes(v)] as const);
  if (entries.length > 0 && entries.every(([k]) => /^\d+$/.test(k))) {
    return entries.sort(([a], [b]) => Number(a) - Number(b)).map(([, v]) => v);
  }
  return Object.fromEntries(entries);
}

/** Params as a canonical string (sorted keys), to tell whether two requests are the same. */
function fingerprint(value: Param): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(fingerprint).join(",")}]`;
  return `{${
    Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${fingerprint(value[k])}`).join(",")
  }}`;
}

const ALPHANUMERIC = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/** A Stripe-style id: prefix + random alphanumerics. */
export function stripeId(prefix: string, length = 24): string {
  const bytes = crypto.getRandomValues(new Uint8Array(length));
  return prefix + Array.from(bytes, (b) => ALPHANUMERIC[b % ALPHANUMERIC.length]).join("");
}

const now = () => Math.floor(Date.now() / 1000);

function stripeError(
  status: number,
  error: { type: string; message: string; code?: string; param?: string },
): Answer {
  const docUrl = error.code
    ? { doc_url: `https://stripe.com/docs/error-codes/${error.code.replace(/_/g, "-")}` }
    : {};
  return { status, body: { error: { ...error, ...docUrl } } };
}

const invalid = (message: string, param?: string, code?: string) =>
  stripeError(400, {
    type: "invalid_request_error",
    message,
    ...(param && { param }),
    ...(code && { code }),
  });

function noSuch(kind: string, id: string, param: string): Answer {
  return stripeError(404, {
    type: "invalid_request_error",
    code: "resource_missing",
    param,
    message: `No such ${kind}: '${id}'`,
  });
}

// ------------------------------------------------------------------------------- endpoint checks

const ALLOWED_PARAMS: Record<string, readonly string[]> = {
  "POST /v1/customers": [
    "address",
    "balance",
    "business_name",
    "cash_balance",
    "description",
    "email",
    "expand",
    "individual_name",
    "invoice_prefix",
    "invoice_settings",
    "metadata",
    "name",
    "next_invoice_sequence",
    "payment_method",
    "phone",
    "preferred_locales",
    "shipping",
    "source",
    "tax",
    "tax_exempt",
    "tax_id_data",
    "test_clock",
  ],
  "GET /v1/customers/:id": ["expand"],
  "POST /v1/checkout/sessions": [
    "adaptive_pricing",
    "after_expiration",
    "allow_promotion_codes",
    "automatic_tax",
    "billing_address_collection",
    "branding_settings",
    "cancel_url",
    "client_reference_id",
    "consent_collection",
    "currency",
    "custom_fields",
    "custom_text",
    "customer",
    "customer_account",
    "customer_creation",
    "customer_email",
    "customer_update",
    "discounts",
    "excluded_payment_method_types",
    "expand",
    "expires_at",
    "invoice_creation",
    "line_items",
    "locale",
    "metadata",
    "mode",
    "name_collection",
    "optional_items",
    "origin_context",
    "payment_intent_data",
    "payment_method_collection",
    "payment_method_configuration",
    "payment_method_data",
    "payment_method_options",
    "payment_method_types",
    "permissions",
    "phone_number_collection",
    "redirect_on_completion",
    "return_url",
    "saved_payment_method_options",
    "setup_intent_data",
    "shipping_address_collection",
    "shipping_options",
    "submit_type",
    "subscription_data",
    "success_url",
    "tax_id_collection",
    "ui_mode",
    "wallet_options",
  ],
  "GET /v1/invoices/:id/lines": ["ending_before", "expand", "limit", "starting_after"],
  "POST /v1/billing_portal/sessions": [
    "configuration",
    "customer",
    "customer_account",
    "expand",
    "flow_data",
    "locale",
    "on_behalf_of",
    "return_url",
  ],
};

function unknownParam(endpoint: string, params: Params): Answer | null {
  const allowed = ALLOWED_PARAMS[endpoint];
  const unknown = Object.keys(params).find((k) => !allowed.includes(k));
  return unknown === undefined
    ? null
    : invalid(`Received unknown parameter: ${unknown}`, unknown, "parameter_unknown");
}

const isHash = (v: Param | undefined): v is Params => typeof v === "object" && !Array.isArray(v);

/** Stripe's metadata rules: a hash of strings, at most 50 keys of <= 40 characters, values <= 500. */
function badMetadata(value: Param | undefined, param: string): Answer | null {
  if (value === undefined || value === "") return null;
  if (!isHash(value)) return invalid(`Invalid object`, param);
  const entries = Object.entries(value);
  if (entries.length > 50) return invalid(`Invalid ${param}: at most 50 keys`, param);
  for (const [k, v] of entries) {
    if (typeof v !== "string") return invalid(`Invalid string: ${param}[${k}]`, `${param}[${k}]`);
    if (k.length > 40 || v.length > 500) {
      return invalid(
        `Invalid ${param}[${k}]: keys are at most 40 and values 500 characters`,
        `${param}[${k}]`,
      );
    }
  }
  return null;
}

function positiveInt(v: Param | undefined): number | null {
  return typeof v === "string" && /^[1-9]\d*$/.test(v) ? Number(v) : null;
}

// ----------------------------------------------------------------------------------------- server

export class FakeStripe implements AsyncDisposable {
  readonly port: number;
  readonly hostname: string;
  /** Every request received, in order. */
  readonly requests: RecordedRequest[] = [];
  readonly customers = new Map<string, Json>();
  readonly checkoutSessions = new Map<string, Json>();
  readonly portalSessions = new Map<string, Json>();
  /** Every line item of an invoice, by invoice id (what GET /v1/invoices/:id/lines pages through). */
  readonly invoiceLines = new Map<string, Json[]>();
  #faults: (Fault & { left: number })[] = [];
  #idempotency = new Map<string, Stored>();
  #server: Deno.HttpServer | undefined;
  #options: FakeStripeOptions;

  constructor(options: FakeStripeOptions = {}) {
    this.#options = options;
    this.port = options.port ?? FAKE_STRIPE_PORT;
    this.hostname = options.hostname ?? "127.0.0.1";
  }

  /** http://127.0.0.1:12111 */
  get url(): string {
    return `http://${this.hostname}:${this.port}`;
  }

  /** Starts listening; throws (AddrInUse) if the port is taken. */
  start(): Promise<this> {
    if (this.#server) return Promise.resolve(this);
    this.#server = Deno.serve(
      { hostname: this.hostname, port: this.port, onListen: () => {} },
      (req) => this.#handle(req),
    );
    return Promise.resolve(this);
  }

  /** Stops listening, after answering the requests in flight. Safe to call twice. */
  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    this.#faults = [];
    if (server) await server.shutdown();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  /** Injects a fault into the next `times` matching requests (faults queue; the first matching applies). */
  fail(fault: Fault = {}): this {
    this.#faults.push({ ...fault, left: fault.times ?? 1 });
    return this;
  }

  clearFaults(): this {
    this.#faults = [];
    return this;
  }

  /** A customer that exists before the test (as if created earlier), with the given fields. */
  seedCustomer(fields: { id?: string; email?: string | null; metadata?: Record<string, string> } = {}): Json {
    const customer = this.#customer(fields.id ?? stripeId("cus_", 14), {
      ...(fields.email && { email: fields.email }),
      metadata: fields.metadata ?? {},
    });
    this.customers.set(customer.id as string, customer);
    return customer;
  }

  /** The full list of an invoice's line items, as Stripe holds it (webhook payloads carry the first page). */
  seedInvoiceLines(invoiceId: string, lines: readonly Json[]): void {
    this.invoiceLines.set(invoiceId, [...lines]);
  }

  /** The recorded requests to `method path` (path exact, or a pattern). */
  requestsTo(method: string, path: string | RegExp): RecordedRequest[] {
    return this.requests.filter((r) =>
      r.method === method && (typeof path === "string" ? r.path === path : path.test(r.path))
    );
  }

  /** Forgets recorded requests, objects, stored idempotency keys and faults. */
  reset(): void {
    this.requests.length = 0;
    this.customers.clear();
    this.checkoutSessions.clear();
    this.portalSessions.clear();
    this.invoiceLines.clear();
    this.#idempotency.clear();
    this.#faults = [];
  }

  // ------------------------------------------------------------------------------------ handling

  async #handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const headers: Record<string, string> = {};
    req.headers.forEach((v, k) => headers[k] = v);
    const requestId = stripeId("req_", 14);
    const stripeVersion = req.headers.get("stripe-version") ?? FAKE_STRIPE_API_VERSION;
    const idempotencyKey = req.method === "POST" ? req.headers.get("idempotency-key") : null;
    const text = req.method === "GET" ? url.search.slice(1) : await req.text();

    let params: Params = {};
    let parseError: Answer | null = null;
    try {
      params = parseStripeForm(text);
    } catch (e) {
      parseError = invalid(e instanceof Error ? e.message : String(e), (e as StripeFormError).param);
    }
    const record: RecordedRequest = {
      method: req.method,
      path: url.pathname,
      params,
      headers,
      idempotencyKey,
      receivedAt: Date.now(),
      status: 0,
      replayed: false,
      response: undefined,
    };
    this.requests.push(record);

    const respond = (answer: Answer, extra: Record<string, string> = {}) => {
      record.status = answer.status;
      record.response = answer.body;
      const out = new Headers({
        "content-type": "application/json",
        "request-id": requestId,
        "stripe-version": stripeVersion,
        ...(idempotencyKey && { "idempotency-key": idempotencyKey }),
        ...answer.headers,
        ...extra,
      });
      return new Response(JSON.stringify(answer.body, null, 2), { status: answer.status, headers: out });
    };

    const fault = this.#takeFault(url.pathname);
    if (fault?.status !== undefined) {
      if (fault.delayMs) await sleep(fault.delayMs);
      return respond({
        status: fault.status,
        body: (fault.body as Json | undefined) ?? this.#faultBody(fault.status),
        headers: fault.headers,
      });
    }

    const unauthorized = this.#authenticate(req);
    if (unauthorized) return respond(unauthorized, { "www-authenticate": 'Basic realm="Stripe"' });
    if (parseError) return respond(parseError);

    const route = this.#route(req.method, url.pathname);
    if (!route) {
      return respond(stripeError(404, {
        type: "invalid_request_error",
        message: `Unrecognized request URL (${req.method}: ${url.pathname}). ` +
          "Please see https://stripe.com/docs or we can help at https://support.stripe.com/.",
      }));
    }
    const { endpoint, run } = route;

    if (!idempotencyKey) {
      if (fault?.delayMs) await sleep(fault.delayMs);
      return respond(run(params));
    }
    if (idempotencyKey.length > 255) {
      return respond(
        invalid(
          "Idempotency-Key must be at most 255 characters long.",
          undefined,
          "idempotency_key_too_long",
        ),
      );
    }

    const scope = `${this.#apiKey(req)}\u0000${idempotencyKey}`;
    const print = fingerprint(params);
    const stored = this.#idempotency.get(scope);
    if (stored) {
      if (stored.endpoint !== endpoint) {
        return respond(stripeError(400, {
          type: "idempotency_error",
          message:
            "Keys for idempotent requests can only be used for the same endpoint they were first used for " +
            `('${stored.endpoint}' vs '${endpoint}'). ` +
            `Try using a key other than '${idempotencyKey}' if you meant to execute a different request.`,
        }));
      }
      if (stored.fingerprint !== print) {
        return respond(stripeError(400, {
          type: "idempotency_error",
          message:
            "Keys for idempotent requests can only be used with the same parameters they were first used with. " +
            `Try using a key other than '${idempotencyKey}' if you meant to execute a different request.`,
        }));
      }
      if (!stored.answer) {
        return respond(stripeError(409, {
          type: "idempotency_error",
          message:
            "There is currently another in-progress request using this Idempotent Key (that probably means " +
            "you submitted twice, and the other request is still going through): " +
            `${idempotencyKey}. Please try again later.`,
        }));
      }
      record.replayed = true;
      return respond(stored.answer, { "idempotent-replayed": "true", "original-request": stored.requestId });
    }

    const entry: Stored = { endpoint, fingerprint: print, requestId };
    this.#idempotency.set(scope, entry);
    if (fault?.delayMs) await sleep(fault.delayMs);
    const answer = run(params);
    if (answer.status < 300) entry.answer = answer;
    else this.#idempotency.delete(scope);
    return respond(answer);
  }

  #takeFault(path: string): Fault | undefined {
    const i = this.#faults.findIndex((f) =>
      f.path === undefined || (typeof f.path === "string" ? f.path === path : f.path.test(path))
    );
    if (i < 0) return undefined;
    const fault = this.#faults[i];
    if (--fault.left <= 0) this.#faults.splice(i, 1);
    return fault;
  }

  #faultBody(status: number): Json {
    if (status === 429) {
      return stripeError(429, {
        type: "invalid_request_error",
        code: "rate_limit",
        message:
          "Too many requests hit the API too quickly. We recommend an exponential backoff of your requests.",
      }).body;
    }
    if (status >= 500) return { error: { type: "api_error", message: FAKE_STRIPE_500_MESSAGE } };
    return invalid("Injected failure").body;
  }

  #apiKey(req: Request): string | null {
    const auth = req.headers.get("authorization") ?? "";
    const bearer = /^Bearer\s+(\S+)$/i.exec(auth);
    if (bearer) return bearer[1];
    const basic = /^Basic\s+(\S+)$/i.exec(auth);
    if (basic) {
      try {
        return atob(basic[1]).split(":")[0] || null;
      } catch {
        return null;
      }
    }
    return null;
  }

  #authenticate(req: Request): Answer | null {
    const key = this.#apiKey(req);
    if (!key) {
      return stripeError(401, {
        type: "invalid_request_error",
        message:
          "You did not provide an API key. You need to provide your API key in the Authorization header, " +
          "using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See " +
          "https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/.",
      });
    }
    const ok = this.#options.apiKey
      ? key === this.#options.apiKey
      : /^(sk|rk)_(test|live)_[A-Za-z0-9_]+$/.test(key);
    if (!ok) {
      return stripeError(401, {
        type: "invalid_request_error",
        code: "api_key_invalid",
        message: `Invalid API Key provided: ${key.slice(0, 8)}${"*".repeat(Math.max(0, key.length - 12))}${
          key.slice(-4)
        }`,
      });
    }
    return null;
  }

  #route(method: string, path: string): { endpoint: string; run: (p: Params) => Answer } | null {
    if (method === "POST" && path === "/v1/customers") {
      return { endpoint: "POST /v1/customers", run: (p) => this.#createCustomer(p) };
    }
    const customer = /^\/v1\/customers\/([^/]+)$/.exec(path);
    if (method === "GET" && customer) {
      return {
        endpoint: "GET /v1/customers/:id",
        run: (p) => this.#retrieveCustomer(decodeURIComponent(customer[1]), p),
      };
    }
    if (method === "POST" && path === "/v1/checkout/sessions") {
      return { endpoint: "POST /v1/checkout/sessions", run: (p) => this.#createCheckoutSession(p) };
    }
    const lines = /^\/v1\/invoices\/([^/]+)\/lines$/.exec(path);
    if (method === "GET" && lines) {
      return {
        endpoint: "GET /v1/invoices/:id/lines",
        run: (p) => this.#listInvoiceLines(decodeURIComponent(lines[1]), p),
      };
    }
    if (method === "POST" && path === "/v1/billing_portal/sessions") {
      return { endpoint: "POST /v1/billing_portal/sessions", run: (p) => this.#createPortalSession(p) };
    }
    return null;
  }

  // ----------------------------------------------------------------------------------- customers

  #customer(id: string, p: Params): Json {
    return {
      id,
      object: "customer",
      address: null,
      balance: 0,
      created: now(),
      currency: null,
      default_source: null,
      delinquent: false,
      description: typeof p.description === "string" ? p.description : null,
      email: typeof p.email === "string" && p.email !== "" ? p.email : null,
      invoice_prefix: stripeId("", 8).toUpperCase(),
      invoice_settings: {
        custom_fields: null,
        default_payment_method: null,
        footer: null,
        rendering_options: null,
      },
      livemode: false,
      metadata: isHash(p.metadata) ? p.metadata : {},
      name: typeof p.name === "string" ? p.name : null,
      phone: typeof p.phone === "string" ? p.phone : null,
      preferred_locales: Array.isArray(p.preferred_locales) ? p.preferred_locales : [],
      shipping: null,
      tax_exempt: "none",
      test_clock: null,
    };
  }

  #createCustomer(p: Params): Answer {
    const bad = unknownParam("POST /v1/customers", p) ?? badMetadata(p.metadata, "metadata");
    if (bad) return bad;
    if (p.email !== undefined && (typeof p.email !== "string" || p.email.length > 512)) {
      return invalid("Invalid email address", "email", "email_invalid");
    }
    const customer = this.#customer(stripeId("cus_", 14), p);
    this.customers.set(customer.id as string, customer);
    return { status: 200, body: customer };
  }

  #retrieveCustomer(id: string, p: Params): Answer {
    const bad = unknownParam("GET /v1/customers/:id", p);
    if (bad) return bad;
    const customer = this.customers.get(id);
    return customer ? { status: 200, body: customer } : noSuch("customer", id, "id");
  }

  // ------------------------------------------------------------------------------------ checkout

  #createCheckoutSession(p: Params): Answer {
    const bad = unknownParam("POST /v1/checkout/sessions", p) ?? badMetadata(p.metadata, "metadata");
    if (bad) return bad;
    const mode = p.mode;
    if (mode === undefined) return invalid("Missing required param: mode.", "mode", "parameter_missing");
    if (mode !== "payment" && mode !== "subscription" && mode !== "setup") {
      return invalid(
        `Invalid mode: must be one of payment, setup, or subscription`,
        "mode",
        "parameter_invalid_string",
      );
    }
    if (typeof p.customer === "string") {
      if (!this.customers.has(p.customer)) return noSuch("customer", p.customer, "customer");
      if (p.customer_email !== undefined) {
        return invalid(
          "You may only specify one of these parameters: customer, customer_email.",
          "customer_email",
        );
      }
    }
    if (p.payment_intent_data !== undefined && mode !== "payment") {
      return invalid(`You can not pass \`payment_intent_data\` in \`${mode}\` mode.`, "payment_intent_data");
    }
    if (p.subscription_data !== undefined && mode !== "subscription") {
      return invalid(`You can not pass \`subscription_data\` in \`${mode}\` mode.`, "subscription_data");
    }
    for (const nested of ["payment_intent_data", "subscription_data"] as const) {
      const value = p[nested];
      if (value !== undefined && !isHash(value)) return invalid("Invalid object", nested);
      const badNested = isHash(value) ? badMetadata(value.metadata, `${nested}[metadata]`) : null;
      if (badNested) return badNested;
    }
    if (typeof p.client_reference_id === "string" && p.client_reference_id.length > 200) {
      return invalid("client_reference_id must be at most 200 characters", "client_reference_id");
    }
    for (const urlParam of ["success_url", "cancel_url"] as const) {
      const value = p[urlParam];
      if (value !== undefined && (typeof value !== "string" || !/^https?:\/\/\S+$/.test(value))) {
        return invalid("Not a valid URL", urlParam, "url_invalid");
      }
    }

    const items: Json[] = [];
    let currency: string | null = typeof p.currency === "string" ? p.currency : null;
    let total: number | null = 0;
    if (mode !== "setup") {
      if (!Array.isArray(p.line_items) || p.line_items.length === 0) {
        return invalid(`line_items is required in \`${mode}\` mode.`, "line_items", "parameter_missing");
      }
      for (const [i, item] of p.line_items.entries()) {
        const param = `line_items[${i}]`;
        if (!isHash(item)) return invalid("Invalid object", param);
        const quantity = positiveInt(item.quantity);
        if (quantity === null) return invalid("Invalid positive integer", `${param}[quantity]`);
        let price: Json;
        if (typeof item.price === "string") {
          if (!/^price_[A-Za-z0-9_]+$/.test(item.price)) {
            return noSuch("price", item.price, `${param}[price]`);
          }
          const known = this.#options.prices?.[item.price];
          if (known?.recurring && mode === "payment") {
            return invalid(
              "You specified `payment` mode but passed a recurring price. " +
                "Either switch to `subscription` mode or use only one-time prices.",
              `${param}[price]`,
            );
          }
          if (known && !known.recurring && mode === "subscription") {
            return invalid(
              "You must provide at least one recurring price in `subscription` mode when using prices.",
              `${param}[price]`,
            );
          }
          price = {
            id: item.price,
            object: "price",
            currency: known?.currency ?? null,
            unit_amount: known?.unit_amount ?? null,
            recurring: known?.recurring ?? null,
            type: known ? (known.recurring ? "recurring" : "one_time") : null,
          };
        } else if (isHash(item.price_data)) {
          const pd = item.price_data;
          const amount = typeof pd.unit_amount === "string" && /^\d+$/.test(pd.unit_amount)
            ? Number(pd.unit_amount)
            : null;
          if (typeof pd.currency !== "string" || !/^[a-z]{3}$/.test(pd.currency)) {
            return invalid(
              "Missing required param: line_items[0][price_data][currency].",
              `${param}[price_data][currency]`,
              "parameter_missing",
            );
          }
          if (amount === null) {
            return invalid("Invalid integer: unit_amount", `${param}[price_data][unit_amount]`);
          }
          if (!isHash(pd.product_data) && typeof pd.product !== "string") {
            return invalid(
              "You must specify either `product` or `product_data` when creating a price.",
              `${param}[price_data]`,
            );
          }
          if (
            isHash(pd.product_data) &&
            (typeof pd.product_data.name !== "string" || pd.product_data.name === "")
          ) {
            return invalid(
              "Missing required param: product_data[name].",
              `${param}[price_data][product_data][name]`,
              "parameter_missing",
            );
          }
          if (mode === "subscription" && !isHash(pd.recurring)) {
            return invalid(
              "You must provide at least one recurring price in `subscription` mode when using prices.",
              `${param}[price_data][recurring]`,
            );
          }
          price = {
            id: stripeId("price_", 24),
            object: "price",
            currency: pd.currency,
            unit_amount: amount,
            recurring: isHash(pd.recurring) ? pd.recurring : null,
            type: isHash(pd.recurring) ? "recurring" : "one_time",
            product: typeof pd.product === "string" ? pd.product : stripeId("prod_", 14),
          };
        } else {
          return invalid("You must specify either `price` or `price_data` for each line item.", param);
        }
        const amount = typeof price.unit_amount === "number" ? price.unit_amount * quantity : null;
        total = total === null || amount === null ? null : total + amount;
        currency ??= price.currency as string | null;
        items.push({
          id: stripeId("li_", 24),
          object: "item",
          amount_subtotal: amount,
          amount_total: amount,
          currency: price.currency,
          description: isHash(item.price_data) && isHash(item.price_data.product_data)
            ? item.price_data.product_data.name
            : null,
          price,
          quantity,
        });
      }
    }

    const id = stripeId("cs_test_", 58);
    const created = now();
    const session: Json = {
      id,
      object: "checkout.session",
      after_expiration: null,
      allow_promotion_codes: p.allow_promotion_codes === "true" ? true : null,
      amount_subtotal: mode === "setup" ? null : total,
      amount_total: mode === "setup" ? null : total,
      automatic_tax: { enabled: false, liability: null, status: null },
      billing_address_collection: typeof p.billing_address_collection === "string"
        ? p.billing_address_collection
        : null,
      cancel_url: typeof p.cancel_url === "string" ? p.cancel_url : null,
      client_reference_id: typeof p.client_reference_id === "string" ? p.client_reference_id : null,
      client_secret: null,
      created,
      currency,
      customer: typeof p.customer === "string" ? p.customer : null,
      customer_creation: typeof p.customer === "string"
        ? null
        : (mode === "payment" ? "if_required" : "always"),
      customer_details: null,
      customer_email: typeof p.customer_email === "string" ? p.customer_email : null,
      expires_at: typeof p.expires_at === "string" ? Number(p.expires_at) : created + 24 * 3600,
      invoice: null,
      livemode: false,
      locale: typeof p.locale === "string" ? p.locale : null,
      metadata: isHash(p.metadata) ? p.metadata : {},
      mode,
      payment_intent: null,
      payment_method_types: Array.isArray(p.payment_method_types) ? p.payment_method_types : ["card"],
      payment_status: mode === "setup" ? "no_payment_required" : "unpaid",
      setup_intent: null,
      status: "open",
      submit_type: typeof p.submit_type === "string" ? p.submit_type : null,
      subscription: null,
      success_url: typeof p.success_url === "string" ? p.success_url : null,
      ui_mode: typeof p.ui_mode === "string" ? p.ui_mode : "hosted",
      url: `https://checkout.stripe.com/c/pay/${id}`,
    };
    this.checkoutSessions.set(id, { ...session, line_items: items });
    const expand = Array.isArray(p.expand) ? p.expand : [];
    const body = expand.includes("line_items")
      ? {
        ...session,
        line_items: {
          object: "list",
          data: items,
          has_more: false,
          url: `/v1/checkout/sessions/${id}/line_items`,
        },
      }
      : session;
    return { status: 200, body };
  }

  // -------------------------------------------------------------------------------------- portal

  #createPortalSession(p: Params): Answer {
    const bad = unknownParam("POST /v1/billing_portal/sessions", p);
    if (bad) return bad;
    if (typeof p.customer !== "string") {
      return invalid("Missing required param: customer.", "customer", "parameter_missing");
    }
    if (!this.customers.has(p.customer)) return noSuch("customer", p.customer, "customer");
    if (
      p.return_url !== undefined &&
      (typeof p.return_url !== "string" || !/^https?:\/\/\S+$/.test(p.return_url))
    ) {
      return invalid("Not a valid URL", "return_url", "url_invalid");
    }
    const id = stripeId("bps_", 24);
    const session: Json = {
      id,
      object: "billing_portal.session",
      configuration: typeof p.configuration === "string" ? p.configuration : "bpc_fakedefaultconfiguration",
      created: now(),
      customer: p.customer,
      flow: null,
      livemode: false,
      locale: typeof p.locale === "string" ? p.locale : null,
      on_behalf_of: null,
      return_url: typeof p.return_url === "string" ? p.return_url : null,
      url: `https://billing.stripe.com/p/session/${id}`,
    };
    this.portalSessions.set(id, session);
    return { status: 200, body: session };
  }

  // ------------------------------------------------------------------------------------ invoices

  #listInvoiceLines(invoiceId: string, p: Params): Answer {
    const bad = unknownParam("GET /v1/invoices/:id/lines", p);
    if (bad) return bad;
    const all = this.invoiceLines.get(invoiceId);
    if (!all) return noSuch("invoice", invoiceId, "invoice");
    const limit = p.limit === undefined ? 10 : Number(p.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 100) {
      return invalid(
        "This value must be between 1 and 100 (it currently is " + String(p.limit) + ").",
        "limit",
      );
    }
    let start = 0;
    if (typeof p.starting_after === "string") {
      const i = all.findIndex((line) => line.id === p.starting_after);
      if (i < 0) return noSuch("line item", p.starting_after, "starting_after");
      start = i + 1;
    }
    const data = all.slice(start, start + limit);
    return {
      status: 200,
      body: {
        object: "list",
        data,
        has_more: start + limit < all.length,
        url: `/v1/invoices/${invoiceId}/lines`,
      },
    };
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A started fake: `await using fake = await startFakeStripe();`. */
export function startFakeStripe(options: FakeStripeOptions = {}): Promise<FakeStripe> {
  return new FakeStripe(options).start();
}
