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

/** Compares SHA-256 digests of two secrets in constant time: the time depends on neither their
 * contents nor their lengths. */
export async function sameSecret(given: string, expected: string): Promise<boolean> {
  const digest = (s: string) => crypto.subtle.digest("SHA-256", new TextEncoder().encode(s));
  const [a, b] = await Promise.all([digest(given), digest(expected)]);
  return crypto.subtle.timingSafeEqual(a, b);
}

/** Longest user agent kept: real ones are a few hundred characters. */
export const MAX_USER_AGENT = 512;

/** The request's user agent, cut to `MAX_USER_AGENT` characters. */
export function userAgent(request: Request): string | null {
  const agent = request.headers.get("user-agent");
  return agent === null ? null : [...agent].slice(0, MAX_USER_AGENT).join("");
}

/** A short id as the contract defines it (`^[A-Za-z0-9_.:-]{1,64}$`). */
export function isId(value: string | null): value is string {
  return value !== null && /^[A-Za-z0-9_.:-]{1,64}$/.test(value);
}

/** Lower-case hex of some bytes (digests, MACs). */
export function hex(bytes: ArrayBuffer): string {
  return [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, "0")).join("");
}
