// The caller's network address, as the platform's gateway reports it.

/**
 * The caller's IP: the last x-forwarded-for entry, the one the platform's gateway (and the local one)
 * appends; earlier entries are whatever the client sent. Good for rate-limit keys and audit logs; never
 * the only defence.
 */
export function clientIp(req: Request): string | null {
  const last = req.headers.get("x-forwarded-for")?.split(",").at(-1)?.trim();
  return last && /^[0-9a-fA-F:.]{2,45}$/.test(last) ? last : null;
}
