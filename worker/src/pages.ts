/** `/identify`, `/personalize`, `/go` and `DELETE /visitors/:id`. */

import { allowedOrigin, withCors } from "./cors";
import { type Env, type Io, list } from "./env";
import { hex, isId, json, noStore, reject, sameSecret, userAgent } from "./http";
import { overLimit } from "./limits";
import { normalizeHosts, resolveGo } from "./redirect";

/** What `IDENTITY_STORE` holds per short id (written by `oie` or the outbound tool). */
interface Identity {
  email?: string;
  firstName?: string;
  lastName?: string;
  company?: string;
  campaignName?: string;
}

/** What `PERSONALIZATION` holds per visitor id. */
interface Personalization {
  firstName?: string;
  company?: string;
  campaignName?: string;
  level?: string;
}

async function lookup<T>(kv: KVNamespace, id: string | null): Promise<T | null> {
  if (!isId(id)) return null;
  return kv.get<T>(id, "json").catch(() => null);
}

function corsFor(request: Request, env: Env): string | null {
  const origin = allowedOrigin(request, env);
  return origin instanceof Response ? null : origin;
}

/** Only what a page may show — never the e-mail or last name — and the same shape for unknown
 * ids, so the answer reveals nothing about which ids exist. */
export async function identify(request: Request, env: Env): Promise<Response> {
  const limited = await overLimit(env.LOOKUP_LIMITER, request);
  if (limited) return withCors(limited, corsFor(request, env));
  const id = new URL(request.url).searchParams.get("i");
  const found = await lookup<Identity>(env.IDENTITY_STORE, id);
  return withCors(
    noStore({
      firstName: found?.firstName ?? null,
      company: found?.company ?? null,
      campaignName: found?.campaignName ?? null,
    }),
    corsFor(request, env),
  );
}

/** The level only with `PERSONALIZE_LEVEL = "true"`: anyone holding the link could read it. */
export async function personalize(request: Request, env: Env): Promise<Response> {
  const limited = await overLimit(env.LOOKUP_LIMITER, request);
  if (limited) return withCors(limited, corsFor(request, env));
  const id = new URL(request.url).searchParams.get("v");
  const found = await lookup<Personalization>(env.PERSONALIZATION, id);
  const answer: Record<string, string | null> = {
    firstName: found?.firstName ?? null,
    company: found?.company ?? null,
    campaignName: found?.campaignName ?? null,
  };
  if (env.PERSONALIZE_LEVEL === "true") answer.level = found?.level ?? null;
  return withCors(noStore(answer), corsFor(request, env));
}

/** Records the click (queued to `email_clicks`), then redirects with `i` appended. */
export async function go(request: Request, env: Env, io: Io): Promise<Response> {
  const limited = await overLimit(env.GO_LIMITER, request);
  if (limited) return limited;
  const { id, location } = resolveGo(new URL(request.url).searchParams, normalizeHosts(list(env.REDIRECT_HOSTS)));
  const now = io.now();
  const clickId = `c${now.toString(16)}${crypto.randomUUID().replace(/-/g, "").slice(0, 16)}`;
  const cf = (request.cf ?? {}) as { country?: string };
  try {
    await env.EVENTS_QUEUE.send(
      {
        table: "email_clicks",
        insertId: clickId,
        json: {
          clickId,
          visitorId: id,
          target: location,
          timestamp: now,
          ip: request.headers.get("cf-connecting-ip"),
          country: cf.country ?? null,
          userAgent: userAgent(request),
          clickedAt: new Date(now).toISOString(),
        },
      },
      { contentType: "json" },
    );
  } catch (e) {
    console.error("could not record an e-mail click; redirecting anyway", (e as Error).message);
  }
  return new Response(null, { status: 302, headers: { location, "cache-control": "no-store" } });
}

async function sha256(text: string): Promise<string> {
  return hex(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
}

/** Erasure: removes the visitor's KV entries and records the request (by a hash of the id, so
 * the log itself holds no identifier) in BigQuery's `erasure_requests`. */
export async function erase(request: Request, env: Env, io: Io, id: string): Promise<Response> {
  if (!env.ADMIN_TOKEN) return reject(403, "erasure needs the ADMIN_TOKEN secret");
  const given = request.headers.get("authorization")?.replace(/^Bearer /, "") ?? "";
  if (!(await sameSecret(given, env.ADMIN_TOKEN))) return reject(401, "a valid admin token is required");
  if (!isId(id)) return reject(400, "not a visitor id");
  const identity = (await env.IDENTITY_STORE.get(id)) !== null;
  const personalization = (await env.PERSONALIZATION.get(id)) !== null;
  await Promise.all([env.IDENTITY_STORE.delete(id), env.PERSONALIZATION.delete(id)]);
  // The streaming scorer's history of the visitor (its Durable Object keeps nothing after this).
  const history = env.SCORER ? await env.SCORER.get(env.SCORER.idFromName(id)).forget() : false;
  const now = io.now();
  const visitorHash = await sha256(id);
  await env.EVENTS_QUEUE.send(
    {
      table: "erasure_requests",
      insertId: `${visitorHash}:${now}`,
      json: {
        visitorHash,
        erased: JSON.stringify({ identity, personalization, history }),
        requestedAt: now,
        requestTime: new Date(now).toISOString(),
      },
    },
    { contentType: "json" },
  );
  return json({ erased: { identity, personalization, history } });
}
