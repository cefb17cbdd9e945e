import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { type Event } from "../src/contract";
import { type Env } from "../src/env";
import { resetToken } from "../src/google";
import { MAX_ATTEMPTS, type VisitorScorer } from "../src/scorer";
import { feedScorers } from "../src/scorers";
import { Classifier, like } from "../src/scoring";
import { CaptureQueue, fakeGoogle, type FakeGoogle } from "./helpers";

import fixture from "../../sql/tests/fixture.json";

const DAY = 86_400_000;
const bindings = env as unknown as Env;
const scorers = bindings.SCORER as DurableObjectNamespace<VisitorScorer>;

/** "-24h-1ms", "-3d", "-60m" → milliseconds (as tests/common/warehouse.rs reads the fixture). */
function offset(text: string): number {
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: DAY };
  let total = 0;
  for (const [, sign, n, unit] of text.matchAll(/([-+])(\d+)(ms|s|m|h|d)/g)) {
    total += (sign === "-" ? -1 : 1) * Number(n) * (units[unit as string] as number);
  }
  return total;
}

type Tuple = [string, string, string, string, (Record<string, unknown> | null)?, string?];

/** A fixture visitor's events, with the ids and sessions the SQL tests give them. */
function events(visitor: string, tuples: Tuple[], now: number): Event[] {
  return tuples.map(([session, at, type, path, data, id], i) => ({
    eventId: id ?? `${visitor}-${i}`,
    visitorId: visitor,
    sessionId: `${visitor}-${session}`,
    type,
    timestamp: now + offset(at),
    url: `https://example.com${path}`,
    path,
    ...(data ? { data } : {}),
  }));
}

let unique = 0;
/** A fresh Durable Object for `visitor` (names never repeat across tests). */
function scorer(visitor: string) {
  return scorers.get(scorers.idFromName(`${visitor}#${++unique}`));
}

interface Harness {
  google: FakeGoogle;
  queue: CaptureQueue<{ table: string; insertId: string; json: Record<string, unknown> }>;
  dead: CaptureQueue<{ kind: string; id: string; error: string }>;
}

/** Points the object at a fake Google, capturing queues and a settable clock. */
function wire(instance: VisitorScorer, overrides: Partial<Env> = {}): Harness {
  resetToken();
  const google = fakeGoogle();
  const queue = new CaptureQueue<{ table: string; insertId: string; json: Record<string, unknown> }>();
  const dead = new CaptureQueue<{ kind: string; id: string; error: string }>();
  instance.io = google;
  (instance as unknown as { env: Env }).env = {
    ...bindings,
    HOT_LEADS_TOPIC: "hot-leads",
    EVENTS_QUEUE: queue as unknown as Env["EVENTS_QUEUE"],
    DEAD_LETTERS: dead as unknown as Env["DEAD_LETTERS"],
    ...overrides,
  };
  return { google, queue, dead };
}

function published(google: FakeGoogle): Record<string, unknown>[] {
  return google.publishes.flatMap((p) => p.messages.map((m) => JSON.parse(atob(m.data)) as Record<string, unknown>));
}

const pricing = (id: string, at: number, session = "s1"): Event => ({
  eventId: id,
  visitorId: "jane",
  sessionId: session,
  type: "pageview",
  timestamp: at,
  url: "https://www.acme.example/pricing",
  path: "/pricing",
});
const form = (id: string, at: number): Event => ({ ...pricing(id, at), type: "form_submit", data: { formId: "demo" } });

describe("the streaming scorer's formula", () => {
  const visitors = fixture.visitors as unknown as {
    id: string;
    why: string;
    events: Tuple[];
    score: number;
    level: string;
    parts: Record<string, number>;
    topPages: { path: string; views: number }[];
  }[];

  it.each(visitors)("scores fixture visitor $id as the SQL does ($why)", async (v) => {
    const stub = scorer(v.id);
    const got = await runInDurableObject(stub, (instance: VisitorScorer) => {
      wire(instance).google.clock = fixture.nowMs;
      instance.accept(v.id, events(v.id, v.events, fixture.nowMs), fixture.nowMs);
      return { ...instance.current(), topPages: instance.profile().topPages };
    });
    expect({ score: got.intentScore, level: got.level }).toEqual({ score: v.score, level: v.level });
    const { recency, frequency, engagement, highIntent, conversions } = got;
    expect({ recency, frequency, engagement, highIntent, conversions }).toEqual(v.parts);
    expect(got.topPages).toEqual(v.topPages);
  });

  it("classifies paths with LIKE patterns, case-sensitively, the site's class first", () => {
    const c = Classifier.parse(JSON.stringify({ pricing: ["/tarifs%", "/p_ix"], product: ["%/features"] }));
    expect(c.rank("/tarifs/pro", undefined)).toBe(1);
    expect(c.rank("/prix", undefined)).toBe(1);
    expect(c.rank("/Tarifs", undefined)).toBeNull();
    expect(c.rank("/en/features", undefined)).toBe(3);
    expect(c.rank("/pricing", undefined)).toBeNull();
    expect(c.rank("/", { pageClass: "case_study" })).toBe(2);
    expect(like("/a\\%b").test("/a%b")).toBe(true);
    expect(like("/a\\%b").test("/axb")).toBe(false);
    expect(like("/(x)+").test("/(x)+")).toBe(true);
    expect(() => Classifier.parse('{"prices": []}')).toThrow(/unknown class "prices"/);
    expect(() => Classifier.parse("{")).toThrow(/PAGE_CLASSES is not JSON/);
  });
});

describe("hot-lead moments", () => {
  it("publishes one version-1 message with the identity on a rise, then records the alert", async () => {
    await bindings.IDENTITY_STORE.put("jane", JSON.stringify({ email: "jane@acme.example", firstName: "Jane", lastName: "Doe", company: "Acme", campaignName: "Q4" }));
    const stub = scorer("jane");
    await runInDurableObject(stub, async (instance: VisitorScorer) => {
      const { google, queue } = wire(instance);
      const t = google.clock;
      // 30 + 4 + 1.5×3 + 8×3 = 62.5 → 63: hot, from nothing.
      const first = await instance.ingest("jane", [pricing("p1", t), pricing("p2", t), pricing("p3", t)]);
      expect(first.level).toBe("hot");
      expect(first.moment).toBe(`jane:${t}`);
      const [m] = published(google);
      expect(m).toMatchObject({ version: 1, kind: "hot_lead", id: `jane:${t}`, level: "hot", previousLevel: null });
      expect(m?.["lead"]).toMatchObject({ visitorId: "jane", firstName: "Jane", company: "Acme", email: "jane@acme.example", intentScore: 63, pricingPageVisits: 3, totalSessions: 1 });
      expect(google.publishes[0]?.url).toBe("http://127.0.0.1:9/v1/projects/test-proj/topics/hot-leads:publish");
      expect(google.publishes[0]?.messages[0]?.attributes).toEqual({ version: "1", kind: "hot_lead", visitorId: "jane" });
      expect(queue.sent).toEqual([
        expect.objectContaining({ table: "hot_lead_alerts", insertId: `jane:${t}`, json: expect.objectContaining({ alertId: `jane:${t}`, newLevel: "hot", previousLevel: null, source: "edge", intentScore: 63 }) }),
      ]);

      // The same events again (a retried request): nothing new, no second moment.
      google.clock += 1000;
      expect((await instance.ingest("jane", [pricing("p1", t), pricing("p2", t)])).moment).toBeNull();
      // A fourth pricing view keeps it hot (65): no moment. A form raises it to burning (80): one.
      expect((await instance.ingest("jane", [pricing("h1", google.clock)])).moment).toBeNull();
      const burning = await instance.ingest("jane", [form("f1", google.clock)]);
      expect(burning.level).toBe("burning");
      expect(published(google).map((p) => [p["level"], p["previousLevel"]])).toEqual([
        ["hot", null],
        ["burning", "hot"],
      ]);
      // A month without a visit: the level decays to warm (55; the fall is left to BigQuery),
      // and the visit that raises it again (85.5) is a new moment, from the level it fell to.
      google.clock += 31 * DAY;
      const back = await instance.ingest("jane", [pricing("r1", google.clock, "s2")]);
      expect(back.moment).toBe(`jane:${google.clock}`);
      expect(published(google).at(-1)).toMatchObject({ level: "burning", previousLevel: "warm" });
      expect(queue.sent).toHaveLength(3);
    });
  });

  it("ignores events of other visitors sent to it", async () => {
    await runInDurableObject(scorer("jane"), async (instance: VisitorScorer) => {
      const { google } = wire(instance);
      const other = { ...pricing("x1", google.clock), visitorId: "mallory" };
      expect((await instance.ingest("jane", [other, other])).added).toBe(0);
    });
  });

  it("retries a failed publish with backoff under the same id, then records it once", async () => {
    const stub = scorer("jane");
    const id = await runInDurableObject(stub, async (instance: VisitorScorer) => {
      const { google, queue } = wire(instance);
      google.publishScript.push({ status: 503, body: { error: { message: "unavailable" } } }, { status: 429, body: {} });
      const t = google.clock;
      const r = await instance.ingest("jane", [pricing("p1", t), pricing("p2", t), pricing("p3", t)]);
      expect(google.publishes).toHaveLength(0);
      expect(queue.sent).toHaveLength(0);
      // The alarm before the backoff has passed does nothing; after it, one more try (429).
      await instance.alarm();
      expect(google.publishScript).toHaveLength(1);
      google.clock += 2_000;
      await instance.alarm();
      expect(google.publishScript).toHaveLength(0);
      expect(google.publishes).toHaveLength(0);
      google.clock += 4_000;
      await instance.alarm();
      expect(published(google).map((m) => m["id"])).toEqual([r.moment]);
      expect(queue.sent.map((row) => row.insertId)).toEqual([r.moment]);
      // Nothing is owed any more.
      google.clock += 600_000;
      await instance.alarm();
      expect(google.publishes).toHaveLength(1);
      return r.moment;
    });
    expect(id).toMatch(/^jane:\d+$/);
  });

  it("dead-letters a moment Pub/Sub refuses for good, and one that keeps failing after the last attempt", async () => {
    await runInDurableObject(scorer("jane"), async (instance: VisitorScorer) => {
      const { google, dead, queue } = wire(instance);
      google.publishScript.push({ status: 404, body: { error: { message: "Resource not found (resource=hot-leads)." } } });
      const t = google.clock;
      const r = await instance.ingest("jane", [pricing("p1", t), pricing("p2", t), pricing("p3", t)]);
      expect(dead.sent).toEqual([expect.objectContaining({ kind: "hot_lead_moment", id: r.moment, error: expect.stringContaining("publish HTTP 404") })]);
      expect(queue.sent).toHaveLength(0);
    });
    await runInDurableObject(scorer("jane"), async (instance: VisitorScorer) => {
      const { google, dead } = wire(instance);
      for (let i = 0; i < MAX_ATTEMPTS; i++) google.publishScript.push({ status: 500, body: {} });
      const t = google.clock;
      const r = await instance.ingest("jane", [pricing("p1", t), pricing("p2", t), pricing("p3", t)]);
      for (let i = 1; i < MAX_ATTEMPTS; i++) {
        google.clock += 300_000;
        await instance.alarm();
      }
      expect(google.publishScript).toHaveLength(0);
      expect(dead.sent).toEqual([expect.objectContaining({ id: r.moment, error: expect.stringContaining(`gave up after ${MAX_ATTEMPTS} attempts: publish HTTP 500`) })]);
      google.clock += 300_000;
      await instance.alarm();
      expect(dead.sent).toHaveLength(1);
    });
  });

  it("prunes what leaves the 90-day window and then keeps no storage", async () => {
    const stub = scorer("jane");
    await runInDurableObject(stub, async (instance: VisitorScorer, state) => {
      const { google } = wire(instance);
      const t = google.clock;
      await instance.ingest("jane", [{ ...pricing("p1", t), path: "/" }]);
      expect(await state.storage.getAlarm()).toBe(t + 90 * DAY + 1);
      google.clock = t + 90 * DAY;
      await instance.alarm();
      expect(instance.current().lastVisitAt).toBe(t);
      google.clock = t + 90 * DAY + 1;
      await instance.alarm();
      expect(instance.current()).toMatchObject({ intentScore: 0, lastVisitAt: null });
      expect(await state.storage.getAlarm()).toBeNull();
    });
  });
});

describe("POST /track feeds the scorers", () => {
  it("gives each identified visitor its own events, and none without HOT_LEADS_TOPIC", async () => {
    const now = Date.now();
    const mk = (id: string, visitorId: string | null): Event => ({ ...pricing(id, now), path: "/", visitorId });
    const a = `feed-a-${++unique}`;
    const b = `feed-b-${unique}`;
    const off = `feed-off-${unique}`;
    await feedScorers([mk("a1", a), mk("b1", b), mk("a2", a), mk("n1", null)], { ...bindings, HOT_LEADS_TOPIC: "hot-leads" });
    await feedScorers([mk("o1", off)], { ...bindings, HOT_LEADS_TOPIC: "" });
    const seen = async (visitor: string) =>
      runInDurableObject(scorers.get(scorers.idFromName(visitor)), (instance: VisitorScorer) => instance.current().lastVisitAt);
    expect(await seen(a)).toBe(now);
    expect(await seen(b)).toBe(now);
    expect(await seen(off)).toBeNull();
    const pageviews = await runInDurableObject(scorers.get(scorers.idFromName(a)), (_: VisitorScorer, state) =>
      state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM events").one().n,
    );
    expect(pageviews).toBe(2);
  });
});
