/** Which origins may call the Worker from a browser. */

import { type Env, list } from "./env";
import { reject } from "./http";

/** The allowed origin of the request, `null` without an Origin header, or a refusal. */
export function allowedOrigin(request: Request, env: Env): string | null | Response {
  const origin = request.headers.get("origin");
  if (origin === null) return null;
  const allowed = list(env.ALLOWED_ORIGINS);
  if (allowed.includes(origin) || allowed.includes("*")) return origin;
  return reject(403, `origin ${origin} is not allowed; add it to ALLOWED_ORIGINS`);
}

/** Adds the CORS headers for an allowed origin. */
export function withCors(response: Response, origin: string | null): Response {
  if (origin === null) return response;
  const r = new Response(response.body, response);
  r.headers.set("access-control-allow-origin", origin);
  r.headers.append("vary", "Origin");
  return r;
}

/** `OPTIONS /track`: the preflight of an allowed origin. */
export function preflight(request: Request, env: Env): Response {
  const origin = allowedOrigin(request, env);
  if (origin instanceof Response) return origin;
  return withCors(
    new Response(null, {
      status: 204,
      headers: {
        "access-control-allow-methods": "POST, OPTIONS",
        "access-control-allow-headers": "Content-Type, X-OIE-Signature",
        "access-control-max-age": "86400",
      },
    }),
    origin,
  );
}
