/** The optional real-time hook: events of chosen types are also published to a Pub/Sub topic,
 * so `oie` can alert on them in seconds instead of waiting for the scheduled queries. */

import { type Event } from "./contract";
import { type Env, type Io, type Row, list } from "./env";
import { accessToken } from "./google";

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
      data: btoa(unescape(encodeURIComponent(JSON.stringify(row?.json ?? {})))),
      attributes: { version: "1", eventType: e.type, visitorId: e.visitorId ?? "" },
    }));
  if (messages.length === 0) return;
  try {
    const token = await accessToken(env, io);
    const base = env.PUBSUB_BASE_URL.replace(/\/$/, "");
    const response = await io.fetch(`${base}/v1/projects/${env.BQ_PROJECT}/topics/${env.PUBSUB_TOPIC}:publish`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ messages }),
    });
    if (!response.ok) console.error(`pubsub publish: HTTP ${response.status}`);
  } catch (e) {
    console.error("pubsub publish failed", (e as Error).message);
  }
}
