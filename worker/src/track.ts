/** `POST /track`: check origin or signature, size, contract; enrich; queue; answer 202 at once. */

import { parse, MAX_BODY, type Event } from "./contract";
import { allowedOrigin, withCors } from "./cors";
import { type Env, type Io, type Row } from "./env";
import { json, reject, userAgent } from "./http";
import { overLimit } from "./limits";
import { publishRealtime } from "./pubsub";
import { feedScorers } from "./scorers";
import { SIGNATURE_HEADER, verify } from "./signing";

/** Request facts from Cloudflare's edge (`request.cf`) kept with every event. */
interface Edge {
  country?: string;
  city?: string;
  region?: string;
  timezone?: string;
  colo?: string;
  asn?: number;
}

export async function track(request: Request, env: Env, ctx: ExecutionContext, io: Io): Promise<Response> {
  const signature = request.headers.get(SIGNATURE_HEADER);
  const origin = allowedOrigin(request, env);
  if (origin instanceof Response) return origin;
  if (origin === null && signature === null) {
    return reject(
      403,
      'no Origin header: browsers send one; server-side senders must sign the body (X-OIE-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">)',
    );
  }
  const limited = await overLimit(env.TRACK_LIMITER, request);
  if (limited) return withCors(limited, origin);
  const length = Number(request.headers.get("content-length") ?? "0");
  if (length > MAX_BODY) {
    return withCors(reject(413, `body is ${length} bytes; the limit is ${MAX_BODY}`), origin);
  }
  const bytes = await request.arrayBuffer();
  if (bytes.byteLength > MAX_BODY) {
    return withCors(reject(413, `body is ${bytes.byteLength} bytes; the limit is ${MAX_BODY}`), origin);
  }
  const text = new TextDecoder().decode(bytes);
  if (signature !== null) {
    if (!env.EVENT_SIGNING_SECRET) {
      return withCors(reject(401, "X-OIE-Signature sent, but this Worker has no EVENT_SIGNING_SECRET"), origin);
    }
    const refused = await verify(env.EVENT_SIGNING_SECRET, text, signature, Math.floor(io.now() / 1000));
    if (refused !== null) return withCors(reject(401, refused), origin);
  }
  const parsed = parse(text);
  if (!parsed.ok) return withCors(reject(400, parsed.reason), origin);
  const receivedAt = io.now();
  const rows = parsed.events.map((e) => enrich(e, request, receivedAt));
  try {
    await env.EVENTS_QUEUE.sendBatch(rows.map((body) => ({ body, contentType: "json" as const })));
  } catch (e) {
    console.error("cannot queue events:", (e as Error).message);
    return withCors(reject(503, "busy: events could not be queued; retry shortly", { "retry-after": "1" }), origin);
  }
  ctx.waitUntil(publishRealtime(parsed.events, rows, env, io));
  ctx.waitUntil(feedScorers(parsed.events, env));
  return withCors(json({ success: true, eventsReceived: rows.length }, 202), origin);
}

/** The `events` row: the event plus what the edge knows about the request. */
export function enrich(event: Event, request: Request, receivedAt: number): Row {
  const cf = (request.cf ?? {}) as Edge;
  return {
    table: "events",
    insertId: event.eventId,
    json: {
      eventId: event.eventId,
      visitorId: event.visitorId ?? null,
      sessionId: event.sessionId,
      eventType: event.type,
      timestamp: event.timestamp,
      url: event.url,
      path: event.path,
      title: event.title ?? null,
      referrer: event.referrer ?? null,
      data: event.data === undefined ? null : JSON.stringify(event.data),
      serverTimestamp: receivedAt,
      ip: request.headers.get("cf-connecting-ip"),
      country: cf.country ?? null,
      city: cf.city ?? null,
      region: cf.region ?? null,
      timezone: cf.timezone ?? null,
      colo: cf.colo ?? null,
      asn: typeof cf.asn === "number" ? cf.asn : null,
      userAgent: userAgent(request),
      receivedAt: new Date(receivedAt).toISOString(),
    },
  };
}
