// SHA-256 of a text, in hex (all 32 bytes, or the first `bytes` of them): what idempotency keys, cache keys and
// request fingerprints are made of.
export async function sha256Hex(text: string, bytes = 32): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
  return Array.from(digest.subarray(0, bytes), (b) => b.toString(16).padStart(2, "0")).join("");
}
