/** JSON answers shared by every endpoint. */

export function json(body: unknown, status = 200, headers: HeadersInit = {}): Response {
  const h = new Headers(headers);
  h.set("content-type", "application/json");
  return new Response(JSON.stringify(body), { status, headers: h });
}

/** A refusal with a reason a developer can act on: `{success: false, error}`. */
export function reject(status: number, reason: string, headers: HeadersInit = {}): Response {
  return json({ success: false, error: reason }, status, headers);
}

/** The same answer, not to be cached (identity and personalization lookups). */
export function noStore(body: unknown, headers: HeadersInit = {}): Response {
  const h = new Headers(headers);
  h.set("cache-control", "no-store");
  return json(body, 200, h);
}

/** Compares two strings in time that does not depend on where they differ. */
export function constantTimeEqual(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  }
  return diff === 0;
}

/** A short id as the contract defines it (`^[A-Za-z0-9_.:-]{1,64}$`). */
export function isId(value: string | null): value is string {
  return value !== null && /^[A-Za-z0-9_.:-]{1,64}$/.test(value);
}

/** Lower-case hex of some bytes (digests, MACs). */
export function hex(bytes: ArrayBuffer): string {
  return [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, "0")).join("");
}
