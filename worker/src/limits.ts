/** Per-client-address request limits, with Cloudflare's rate limiting binding (`ratelimits` in
 * wrangler.jsonc: a count per period of 10 or 60 s, per location, keyed by the client address).
 * An unbound limiter means no limit. */

import { reject } from "./http";

/** A 429 with Retry-After when the client is past its limit, else `null`. */
export async function overLimit(limiter: RateLimit | undefined, request: Request): Promise<Response | null> {
  if (limiter === undefined) return null;
  const key = request.headers.get("cf-connecting-ip") ?? "unknown";
  const { success } = await limiter.limit({ key });
  if (success) return null;
  return reject(429, "too many requests from this address; retry after 60 s", { "retry-after": "60" });
}
