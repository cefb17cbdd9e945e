/** A hot-lead moment: a visitor's rise to hot or burning, seen by its Durable Object. It is
 * published to Pub/Sub as a version-1 hot-lead message (the format `oie`'s `[sources.pubsub]`
 * reads, docs/cloud-mode.md) and then recorded in `hot_lead_alerts` through the events queue, so
 * the scheduled `3_hot_lead_alerts.sql` does not alert the same rise again. Its id,
 * `visitorId:atMs`, is fixed when the rise is seen and kept across retries and redeliveries. */

import { type Env, type Io, type Row } from "./env";
import { accessToken, AuthError, resetToken } from "./google";
import { type Profile } from "./history";
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

/** What one publish attempt came to. */
export type Published = { ok: true } | { ok: false; retry: boolean; error: string };

/** Publishes one moment to `HOT_LEADS_TOPIC` with the Worker's service account. Network errors,
 * 408, 429, 5xx and a refused token (renewed first) are worth retrying; other answers are not. */
export async function publish(m: Moment, env: Env, io: Io): Promise<Published> {
  const identity = await env.IDENTITY_STORE.get<Identity>(m.visitorId, "json").catch(() => null);
  const body = message(m, identity);
  let token: string;
  try {
    token = await accessToken(env, io);
  } catch (e) {
    return { ok: false, retry: e instanceof AuthError ? e.retry : true, error: (e as Error).message };
  }
  const base = env.PUBSUB_BASE_URL.replace(/\/$/, "");
  const url = `${base}/v1/projects/${env.BQ_PROJECT}/topics/${env.HOT_LEADS_TOPIC}:publish`;
  let response: Response;
  try {
    response = await io.fetch(url, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({
        messages: [
          {
            data: base64(JSON.stringify(body)),
            attributes: { version: "1", kind: "hot_lead", visitorId: m.visitorId },
          },
        ],
      }),
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

function base64(text: string): string {
  let binary = "";
  for (const b of new TextEncoder().encode(text)) binary += String.fromCharCode(b);
  return btoa(binary);
}
