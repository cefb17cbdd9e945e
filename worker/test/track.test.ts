import { createExecutionContext, SELF, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { parse, wellFormed } from "../src/contract";
import { sign } from "../src/signing";
import { track } from "../src/track";
import { fakeGoogle, ORIGIN, testEnv } from "./helpers";

import cases from "../../contract/examples/invalid/cases.json";

// The contract's own fixtures, bundled into the test (workerd has no host file system).
const files = import.meta.glob<string>("../../contract/examples/valid/*.json", {
  eager: true,
  query: "?raw",
  import: "default",
});
const valid = Object.entries(files).map(([path, body]) => ({ name: path.split("/").pop(), body }));
const invalid = cases as { why: string; body: unknown }[];

function post(body: string, headers: Record<string, string> = { origin: ORIGIN }): Promise<Response> {
  return SELF.fetch("https://ingest.acme.example/track", {
    method: "POST",
    headers: { "content-type": "text/plain", ...headers },
    body,
  });
}

function event(i: number, extra: Record<string, unknown> = {}) {
  return { eventId: `e${i}`, type: "pageview", timestamp: 1_790_000_000_000 + i, sessionId: "s1", url: "https://www.acme.example/", path: "/", visitorId: "ab3f9", ...extra };
}

describe("POST /track", () => {
  it.each(valid)("accepts the contract example $name", async ({ body }) => {
    const response = await post(body);
    expect(response.status).toBe(202);
    const answer = await response.json<{ success: boolean; eventsReceived: number }>();
    expect(answer).toEqual({ success: true, eventsReceived: JSON.parse(body).events.length });
    expect(response.headers.get("access-control-allow-origin")).toBe(ORIGIN);
  });

  it.each(invalid)("rejects: $why", async ({ body }) => {
    const response = await post(JSON.stringify(body));
    expect(response.status).toBe(400);
    const answer = await response.json<{ success: boolean; error: string }>();
    expect(answer.success).toBe(false);
    expect(answer.error.length).toBeGreaterThan(5);
  });

  it("reads half a surrogate pair as U+FFFD, as oie run does", () => {
    // What JSON.stringify writes for a title cut through an emoji: JSON.parse keeps the half.
    const body = JSON.stringify({ v: 1, events: [event(1, { title: "Pricing \u{1F680}".slice(0, 9) })] });
    expect(body).toContain("\\ud83d");
    const parsed = parse(body);
    expect(parsed.ok && parsed.events[0]?.title).toBe("Pricing \ufffd");
    expect(wellFormed("\ude80 a \ud83d\ude80 b \ud83d")).toBe("\ufffd a \u{1F680} b \ufffd");
  });

  it("says where a body breaks the contract", async () => {
    const bad = { v: 1, events: [event(1), event(2, { type: "scroll_depth", data: { depth: 33 } })] };
    const answer = await (await post(JSON.stringify(bad))).json<{ error: string }>();
    expect(answer.error).toMatch(/^\/events\/1\/data\/depth: /);
    const notJson = await (await post("{oops")).json<{ error: string }>();
    expect(notJson.error).toMatch(/^body is not JSON/);
  });

  it("limits size and event count", async () => {
    const big = JSON.stringify({ v: 1, events: [event(1, { title: "x".repeat(70_000) })] });
    const tooBig = await post(big);
    expect(tooBig.status).toBe(413);
    expect((await tooBig.json<{ error: string }>()).error).toMatch(/the limit is 65536/);
    const many = JSON.stringify({ v: 1, events: Array.from({ length: 51 }, (_, i) => event(i)) });
    const answer = await post(many);
    expect(answer.status).toBe(400);
    expect((await answer.json<{ error: string }>()).error).toBe("/events: 51 events; at most 50 per request");
  });

  it("checks the origin on every POST and answers preflights", async () => {
    const foreign = await post(JSON.stringify({ v: 1, events: [event(1)] }), { origin: "https://evil.example" });
    expect(foreign.status).toBe(403);
    expect((await foreign.json<{ error: string }>()).error).toMatch(/evil.example is not allowed/);
    const none = await post(JSON.stringify({ v: 1, events: [event(1)] }), {});
    expect(none.status).toBe(403);
    const ok = await SELF.fetch("https://ingest.acme.example/track", {
      method: "OPTIONS",
      headers: { origin: "https://app.acme.example", "access-control-request-method": "POST" },
    });
    expect(ok.status).toBe(204);
    expect(ok.headers.get("access-control-allow-origin")).toBe("https://app.acme.example");
    expect(ok.headers.get("access-control-allow-methods")).toContain("POST");
    const denied = await SELF.fetch("https://ingest.acme.example/track", {
      method: "OPTIONS",
      headers: { origin: "https://evil.example" },
    });
    expect(denied.status).toBe(403);
    expect(denied.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("accepts signed bodies from servers and refuses bad, stale or old-form signatures", async () => {
    const body = JSON.stringify({ v: 1, events: [event(1)] });
    const now = Math.floor(Date.now() / 1000);
    const signature = await sign("test-signing-secret", now, body);
    expect((await post(body, { "x-oie-signature": signature })).status).toBe(202);
    const tampered = await post(body.replace("e1", "e2"), { "x-oie-signature": signature });
    expect(tampered.status).toBe(401);
    expect((await tampered.json<{ error: string }>()).error).toMatch(/does not match the body/);
    const wrongKey = await post(body, { "x-oie-signature": await sign("other-secret", now, body) });
    expect(wrongKey.status).toBe(401);
    const replayed = await post(body, { "x-oie-signature": await sign("test-signing-secret", now - 600, body) });
    expect(replayed.status).toBe(401);
    expect((await replayed.json<{ error: string }>()).error).toMatch(/more than 300 seconds from now/);
    const moved = await post(body, { "x-oie-signature": signature.replace(`t=${now}`, `t=${now + 1}`) });
    expect(moved.status).toBe(401);
    const oldForm = await post(body, { "x-oie-signature": "sha256=00" });
    expect((await oldForm.json<{ error: string }>()).error).toMatch(/old `sha256=<hex>` form/);
  });

  it("keeps at most 512 characters of the user agent", async () => {
    const { env, events } = testEnv();
    const request = new Request("https://ingest.acme.example/track", {
      method: "POST",
      headers: { origin: ORIGIN, "user-agent": "A".repeat(300_000) },
      body: JSON.stringify({ v: 1, events: [event(1)] }),
    });
    const ctx = createExecutionContext();
    expect((await track(request, env, ctx, fakeGoogle())).status).toBe(202);
    await waitOnExecutionContext(ctx);
    expect((events.sent[0]?.json["userAgent"] as string).length).toBe(512);
  });

  it("signs the same value as oie run (the vector in src/ingest/signing.rs)", async () => {
    expect(await sign("test-signing-secret", 1_800_000_000, '{"v":1,"events":[]}')).toBe(
      "t=1800000000,v1=ade6fd5c7ce129ad2cd6e4af6dc40632a8c2b215001432bd8b78542418f6555b",
    );
  });

  it("enriches each event at the edge and queues one row per event", async () => {
    const { env, events } = testEnv();
    const google = fakeGoogle();
    const request = new Request("https://ingest.acme.example/track", {
      method: "POST",
      headers: { origin: ORIGIN, "user-agent": "Mozilla/5.0 test", "cf-connecting-ip": "203.0.113.7" },
      body: JSON.stringify({ v: 1, events: [event(1, { data: { spa: true } }), event(2, { visitorId: null })] }),
      cf: { country: "DE", city: "Berlin", region: "Berlin", timezone: "Europe/Berlin", colo: "FRA", asn: 3320 },
    });
    const ctx = createExecutionContext();
    const response = await track(request, env, ctx, google);
    await waitOnExecutionContext(ctx);
    expect(response.status).toBe(202);
    expect(events.sent).toHaveLength(2);
    const [first, second] = events.sent;
    expect(first).toEqual({
      table: "events",
      insertId: "e1",
      json: {
        eventId: "e1", visitorId: "ab3f9", sessionId: "s1", eventType: "pageview", timestamp: 1_790_000_000_001,
        url: "https://www.acme.example/", path: "/", title: null, referrer: null, data: '{"spa":true}',
        serverTimestamp: google.clock, ip: "203.0.113.7", country: "DE", city: "Berlin", region: "Berlin",
        timezone: "Europe/Berlin", colo: "FRA", asn: 3320, userAgent: "Mozilla/5.0 test",
        receivedAt: new Date(google.clock).toISOString(),
      },
    });
    expect(second?.json["visitorId"]).toBeNull();
  });

  it("answers 503 with Retry-After when the queue cannot take the events", async () => {
    const { env, events } = testEnv();
    events.fail = true;
    const request = new Request("https://ingest.acme.example/track", {
      method: "POST",
      headers: { origin: ORIGIN },
      body: JSON.stringify({ v: 1, events: [event(1)] }),
    });
    const response = await track(request, env, createExecutionContext(), fakeGoogle());
    expect(response.status).toBe(503);
    expect(response.headers.get("retry-after")).toBe("1");
  });

  it("publishes configured event types to Pub/Sub in real time", async () => {
    const { env } = testEnv({ PUBSUB_TOPIC: "hot-moments", PUBSUB_EVENT_TYPES: "form_submit,pageview:pricing", PUBSUB_BASE_URL: "https://pubsub.test" });
    const google = fakeGoogle();
    const body = {
      v: 1,
      events: [
        event(1, { path: "/pricing" }),
        event(2, { path: "/blog" }),
        event(3, { type: "form_submit", data: { formId: "demo", fields: ["email"] } }),
        event(4, { type: "form_submit", visitorId: null, data: { formId: "demo", fields: [] } }),
      ],
    };
    const request = new Request("https://ingest.acme.example/track", { method: "POST", headers: { origin: ORIGIN }, body: JSON.stringify(body) });
    const ctx = createExecutionContext();
    expect((await track(request, env, ctx, google)).status).toBe(202);
    await waitOnExecutionContext(ctx);
    expect(google.publishes).toHaveLength(1);
    const [publish] = google.publishes;
    expect(publish?.url).toBe("https://pubsub.test/v1/projects/test-proj/topics/hot-moments:publish");
    expect(publish?.messages.map((m) => m.attributes)).toEqual([
      { version: "1", eventType: "pageview", visitorId: "ab3f9" },
      { version: "1", eventType: "form_submit", visitorId: "ab3f9" },
    ]);
    expect(JSON.parse(atob(publish?.messages[0]?.data ?? "")).eventId).toBe("e1");
  });
});
