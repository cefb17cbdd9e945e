/** Hands each identified visitor's accepted events to its Durable Object (`VisitorScorer`), one
 * call per visitor per request. Failures are logged, never thrown: the events are safe in the
 * queue either way, and the scheduled queries score them. */

import { type Event } from "./contract";
import { type Env } from "./env";

export async function feedScorers(events: Event[], env: Env): Promise<void> {
  const scorers = env.SCORER;
  if (!scorers || !env.HOT_LEADS_TOPIC) return;
  const byVisitor = new Map<string, Event[]>();
  for (const e of events) {
    if (e.visitorId) byVisitor.set(e.visitorId, [...(byVisitor.get(e.visitorId) ?? []), e]);
  }
  await Promise.all(
    [...byVisitor].map(async ([visitorId, mine]) => {
      try {
        await scorers.get(scorers.idFromName(visitorId)).ingest(visitorId, mine);
      } catch (e) {
        console.error(`scorer for ${visitorId} failed: ${(e as Error).message}`);
      }
    }),
  );
}
