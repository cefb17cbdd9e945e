/** The optional real-time hook: events of chosen types are also published to a Pub/Sub topic,
 * so `oie` can alert on them in seconds instead of waiting for the scheduled queries. */

import { type Event } from "./contract";
import { type Env, type Io, type Row, list } from "./env";
import { accessToken, AuthError, resetToken } from "./google";

/** Whether `event` is one the configuration wants published. */
export function wanted(event: Event, types: string[]): boolean {
  return types.some((t) => {
    const [type, pageClass] = t.split(":");
    if (type !== event.type) return false;
    if (pageClass === undefined) return true;
    return event.data?.["pageClass"] === pageClass || event.path.startsWith(`/${pageClass}`);
  });
}

/** Publishes the wanted events (with their enrichment); failures are logged, never thrown:
 * the events are safe in the queue either way. */
export async function publishRealtime(events: Event[], rows: Row[], env: Env, io: Io): Promise<void> {
  if (!env.PUBSUB_TOPIC) return;
  const types = list(env.PUBSUB_EVENT_TYPES);
  const messages = events
    .map((e, i) => ({ e, row: rows[i] }))
    .filter(({ e }) => e.visitorId && wanted(e, types))
    .map(({ e, row }) => ({
      data: base64(JSON.stringify(row?.json ?? {})),
      attributes: { version: "1", eventType: e.type, visitorId: e.visitorId ?? "" },
    }));
  if (messages.length === 0) return;
  const outcome = await publish(env.PUBSUB_TOPIC, messages, env, io);
  if (!outcome.ok) console.error(`pubsub publish failed: ${outcome.error}`);
}

/** What one publish call came to. */
export type Published = { ok: true } | { ok: false; retry: boolean; error: string };

/** Publishes `messages` to `topic` with the Worker's service account. Network errors, 408, 429,
 * 5xx and a refused token (renewed for the next call) are worth retrying; other answers are not. */
export async function publish(
  topic: string,
  messages: { data: string; attributes: Record<string, string> }[],
  env: Env,
  io: Io,
): Promise<Published> {
  let token: string;
  try {
    token = await accessToken(env, io);
  } catch (e) {
    return { ok: false, retry: e instanceof AuthError ? e.retry : true, error: (e as Error).message };
  }
  const base = env.PUBSUB_BASE_URL.replace(/\/$/, "");
  let response: Response;
  try {
    response = await io.fetch(`${base}/v1/projects/${env.BQ_PROJECT}/topics/${topic}:publish`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ messages }),
    });
  } catch (e) {
    return { ok: false, retry: true, error: `publish failed: ${(e as Error).message}` };
  }
  if (response.ok) return { ok: true };
  const text = (await response.text().catch(() => "")).slice(0, 300);
  if (response.status === 401) resetToken();
  const retry = [401, 408, 429].includes(response.status) || response.status >= 500;
  return { ok: false, retry, error: `publish HTTP ${response.status}: ${text}` };
}

/** UTF-8 text as base64 (Pub/Sub's `data`). */
export function base64(text: string): string {
  let binary = "";
  for (const b of new TextEncoder().encode(text)) binary += String.fromCharCode(b);
  return btoa(binary);
}
