// Building answers: a JSON body with its content type, and an HttpError in the one error shape.
import { errorBody, type HttpError } from "./errors.ts";

export function json(body: unknown, init: { status?: number; headers?: HeadersInit } = {}): Response {
  const headers = new Headers(init.headers);
  headers.set("content-type", "application/json; charset=utf-8");
  return new Response(JSON.stringify(body), { status: init.status ?? 200, headers });
}

export function errorResponse(error: HttpError): Response {
  return json(errorBody(error.code, error.message, { details: error.details, hint: error.hint }), {
    status: error.status,
    headers: error.headers,
  });
}
