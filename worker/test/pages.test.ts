import { env, runInDurableObject, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { go, personalize } from "../src/pages";
import type { VisitorScorer } from "../src/scorer";
import vectors from "../../contract/redirects.json";
import { fakeGoogle, testEnv } from "./helpers";

const BASE = "https://ingest.acme.example";

async function seed(): Promise<void> {
  await env.IDENTITY_STORE.put(
    "ab3f9",
    JSON.stringify({ email: "jane@acme.example", firstName: "Jane", lastName: "Doe", company: "Acme", campaignName: "Q4 Outbound" }),
  );
  await env.PERSONALIZATION.put("ab3f9", JSON.stringify({ firstName: "Jane", company: "Acme", campaignName: "Q4 Outbound", level: "hot" }));
}

describe("GET /identify and /personalize", () => {
  it("shows only what a page may show, and the same shape for unknown ids", async () => {
    await seed();
    const known = await SELF.fetch(`${BASE}/identify?i=ab3f9`);
    const text = await known.text();
    expect(JSON.parse(text)).toEqual({ firstName: "Jane", company: "Acme", campaignName: "Q4 Outbound" });
    expect(text).not.toContain("jane@acme.example");
    expect(text).not.toContain("Doe");
    expect(known.headers.get("cache-control")).toBe("no-store");
    for (const id of ["nobody", "", "../etc", "x".repeat(65)]) {
      const unknown = await SELF.fetch(`${BASE}/identify?i=${encodeURIComponent(id)}`);
      expect(unknown.status).toBe(200);
      expect(await unknown.json()).toEqual({ firstName: null, company: null, campaignName: null });
    }
    // The level stays out unless PERSONALIZE_LEVEL is "true".
    const personal = await SELF.fetch(`${BASE}/personalize?v=ab3f9`, { headers: { origin: "https://www.acme.example" } });
    expect(await personal.json()).toEqual({ firstName: "Jane", company: "Acme", campaignName: "Q4 Outbound" });
    expect(personal.headers.get("access-control-allow-origin")).toBe("https://www.acme.example");
    expect(await (await SELF.fetch(`${BASE}/personalize?v=nobody`)).json()).toEqual({
      firstName: null,
      company: null,
      campaignName: null,
    });
    const { env: withLevel } = testEnv({ PERSONALIZE_LEVEL: "true" });
    const shown = await personalize(new Request(`${BASE}/personalize?v=ab3f9`), withLevel);
    expect(await shown.json()).toEqual({ firstName: "Jane", company: "Acme", campaignName: "Q4 Outbound", level: "hot" });
  });

  it("answers 429 with Retry-After past the per-address limit (the rate limiting binding)", async () => {
    let allowed = 0;
    const ask = (i: number) =>
      SELF.fetch(`${BASE}/identify?i=${(i * 2654435761 % 1048576).toString(16)}`, {
        headers: { "cf-connecting-ip": "198.51.100.99" },
      });
    // The local limiter (miniflare's) counts in fixed windows of `period` seconds from the
    // epoch: a loop that straddles a window's end would get a second allowance. Start clear of
    // the next boundary.
    const toBoundary = 60_000 - (Date.now() % 60_000);
    if (toBoundary < 10_000) await new Promise((r) => setTimeout(r, toBoundary + 250));
    for (let i = 0; i < 200; i++) {
      const r = await ask(i);
      if (r.status === 200) {
        allowed++;
        continue;
      }
      expect(r.status).toBe(429);
      expect(r.headers.get("retry-after")).toBe("60");
      expect((await r.json<{ error: string }>()).error).toMatch(/too many requests/);
    }
    // wrangler.jsonc: 60 lookups a minute per address.
    expect(allowed).toBe(60);
    // Another address has its own allowance.
    const other = await SELF.fetch(`${BASE}/identify?i=ab3f9`, { headers: { "cf-connecting-ip": "198.51.100.100" } });
    expect(other.status).toBe(200);
  }, 30_000);
});

describe("GET /go", () => {
  // The same file `oie run`'s tests read: both implementations answer every case alike.
  it.each(vectors.cases)("contract/redirects.json: $name", async ({ query, location }) => {
    const { env: e } = testEnv({ REDIRECT_HOSTS: vectors.redirect_hosts.join(",") });
    const response = await go(new Request(`${BASE}/go?${query}`), e, fakeGoogle());
    expect(response.status).toBe(302);
    expect(response.headers.get("location")).toBe(location);
  });

  it("has at least 40 redirect vectors", () => {
    expect(vectors.cases.length).toBeGreaterThanOrEqual(40);
  });

  it("answers through the Worker as the function does", async () => {
    const response = await SELF.fetch(`${BASE}/go?i=ab3f9&to=%2F.%2F%2Fevil.example`, { redirect: "manual" });
    expect(response.status).toBe(302);
    expect(response.headers.get("location")).toBe("/");
  });

  it("records the click before redirecting", async () => {
    const { env: e, events } = testEnv();
    const google = fakeGoogle();
    const request = new Request(`${BASE}/go?i=ab3f9&to=%2Fpricing`, {
      headers: { "user-agent": "Mail client", "cf-connecting-ip": "198.51.100.4" },
      cf: { country: "FR" },
    });
    const response = await go(request, e, google);
    expect(response.headers.get("location")).toBe("/pricing?i=ab3f9");
    expect(events.sent).toHaveLength(1);
    const [click] = events.sent;
    expect(click?.table).toBe("email_clicks");
    expect(click?.json).toMatchObject({ visitorId: "ab3f9", target: "/pricing?i=ab3f9", ip: "198.51.100.4", country: "FR", userAgent: "Mail client", timestamp: google.clock });
    // A broken queue never blocks the visitor.
    events.fail = true;
    expect((await go(request, e, google)).status).toBe(302);
  });
});

describe("DELETE /visitors/:id", () => {
  it("needs the admin token, removes KV entries and the scorer's history, and records the request", async () => {
    await seed();
    const scorer = env.SCORER!.get(env.SCORER!.idFromName("ab3f9"));
    const visit = { eventId: "x1", type: "pageview", timestamp: Date.now(), sessionId: "s1", visitorId: "ab3f9", url: "https://www.acme.example/", path: "/" };
    await runInDurableObject(scorer, (instance: VisitorScorer) => instance.accept("ab3f9", [visit], Date.now()));
    const del = (token?: string) =>
      SELF.fetch(`${BASE}/visitors/ab3f9`, { method: "DELETE", headers: token ? { authorization: `Bearer ${token}` } : {} });
    expect((await del()).status).toBe(401);
    expect((await del("wrong")).status).toBe(401);
    expect(await env.IDENTITY_STORE.get("ab3f9")).not.toBeNull();
    const response = await del("test-admin-token");
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ erased: { identity: true, personalization: true, history: true } });
    expect(await runInDurableObject(scorer, (instance: VisitorScorer) => instance.current().lastVisitAt)).toBeNull();
    expect(await env.IDENTITY_STORE.get("ab3f9")).toBeNull();
    expect(await env.PERSONALIZATION.get("ab3f9")).toBeNull();
    expect(await (await SELF.fetch(`${BASE}/identify?i=ab3f9`)).json()).toEqual({ firstName: null, company: null, campaignName: null });
    expect(await (await del("test-admin-token")).json()).toEqual({ erased: { identity: false, personalization: false, history: false } });
  });

  it("answers 400 for an id that is not valid percent-encoding", async () => {
    for (const path of ["%E0", "%FF%FE", "%"]) {
      const r = await SELF.fetch(`${BASE}/visitors/${path}`, { method: "DELETE", headers: { authorization: "Bearer test-admin-token" } });
      expect(r.status).toBe(400);
    }
  });

  it("records the erasure by a hash of the id", async () => {
    const { env: e, events } = testEnv();
    const { erase } = await import("../src/pages");
    const request = new Request(`${BASE}/visitors/ab3f9`, { method: "DELETE", headers: { authorization: "Bearer test-admin-token" } });
    await erase(request, e, fakeGoogle(), "ab3f9");
    const [record] = events.sent;
    expect(record?.table).toBe("erasure_requests");
    expect(JSON.stringify(record)).not.toContain("ab3f9");
    expect(record?.json["visitorHash"]).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe("other routes", () => {
  it("answers /health and refuses unknown routes with a reason", async () => {
    expect(await (await SELF.fetch(`${BASE}/health`)).json()).toEqual({ status: "ok" });
    const missing = await SELF.fetch(`${BASE}/nope`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: string }).error).toBe("no route for GET /nope");
    expect((await SELF.fetch(`${BASE}/track`)).status).toBe(405);
  });
});
