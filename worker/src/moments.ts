/** A hot-lead moment: a visitor's rise to hot or burning, seen by its Durable Object. It is
 * published to Pub/Sub as a version-1 hot-lead message (the format `oie`'s `[sources.pubsub]`
 * reads, docs/cloud-mode.md) and then recorded in `hot_lead_alerts` through the events queue, so
 * the scheduled `3_hot_lead_alerts.sql` does not alert the same rise again. Its id,
 * `visitorId:atMs`, is fixed when the rise is seen and kept across retries and redeliveries. */

import { type Env, type Io, type Row } from "./env";
import { type Profile } from "./history";
import { base64, publish, type Published } from "./pubsub";
import { type Level, type Score } from "./scoring";

export interface Moment {
  id: string;
  visitorId: string;
  at: number;
  level: Level;
  /** The level just before (null: the visitor had no event in the window). */
  previousLevel: Level | null;
  score: Score;
  profile: Profile;
}

/** The public fields of an `IDENTITY_STORE` value. */
interface Identity {
  email?: string;
  firstName?: string;
  lastName?: string;
  company?: string;
  title?: string;
  campaignId?: string;
  campaignName?: string;
}

/** The version-1 hot-lead message; `lead` carries `lead_profiles`' columns. */
export function message(m: Moment, identity: Identity | null): Record<string, unknown> {
  const p = m.profile;
  const text = (v: unknown) => (typeof v === "string" && v !== "" ? v : null);
  return {
    version: 1,
    kind: "hot_lead",
    id: m.id,
    at: new Date(m.at).toISOString(),
    level: m.level,
    previousLevel: m.previousLevel,
    lead: {
      visitorId: m.visitorId,
      email: text(identity?.email),
      firstName: text(identity?.firstName),
      lastName: text(identity?.lastName),
      company: text(identity?.company),
      title: text(identity?.title),
      campaignId: text(identity?.campaignId),
      campaignName: text(identity?.campaignName),
      intentScore: m.score.intentScore,
      engagementLevel: m.level,
      previousLevel: m.previousLevel,
      levelChangedAt: m.at,
      firstVisitAt: p.firstVisitAt,
      lastVisitAt: p.lastVisitAt,
      totalSessions: p.sessions,
      totalPageviews: p.pageviews,
      totalActiveSeconds: Math.trunc(p.activeMs / 1000),
      pricingPageVisits: p.pricing,
      caseStudyViews: p.caseStudies,
      productPageViews: p.products,
      formSubmissions: p.forms,
      videosCompleted: p.videosCompleted,
      maxScrollDepth: p.maxScrollDepth,
      lastPageUrl: p.lastPageUrl,
      scoreRecency: m.score.recency,
      scoreFrequency: m.score.frequency,
      scoreEngagement: m.score.engagement,
      scoreHighIntent: m.score.highIntent,
      scoreConversions: m.score.conversions,
      topPages: p.topPages,
      scoredAt: m.at,
    },
  };
}

/** The `hot_lead_alerts` row that tells the scheduled query this rise was alerted. */
export function alertRow(m: Moment): Row {
  return {
    table: "hot_lead_alerts",
    insertId: m.id,
    json: {
      alertId: m.id,
      visitorId: m.visitorId,
      previousLevel: m.previousLevel,
      newLevel: m.level,
      intentScore: m.score.intentScore,
      levelChangedAt: m.at,
      alertedAt: m.at,
      alertTime: new Date(m.at).toISOString(),
      source: "edge",
    },
  };
}

/** Publishes one moment to `HOT_LEADS_TOPIC`, with the public fields of the visitor's
 * `IDENTITY_STORE` value. */
export async function publishMoment(m: Moment, env: Env, io: Io): Promise<Published> {
  const identity = await env.IDENTITY_STORE.get<Identity>(m.visitorId, "json").catch(() => null);
  const data = base64(JSON.stringify(message(m, identity)));
  const attributes = { version: "1", kind: "hot_lead", visitorId: m.visitorId };
  return publish(env.HOT_LEADS_TOPIC ?? "", [{ data, attributes }], env, io);
}
