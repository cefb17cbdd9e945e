/** Shared test helpers: capturing queues and a fake Google (token endpoint + BigQuery). */

import { env } from "cloudflare:test";
import type { DeadLetter, Env, Io, Row } from "../src/env";

export const ORIGIN = "https://www.acme.example";

/** A queue that keeps what is sent to it. */
export class CaptureQueue<T> {
  sent: T[] = [];
  fail = false;
  async send(body: T): Promise<void> {
    if (this.fail) throw new Error("queue unavailable");
    this.sent.push(body);
  }
  async sendBatch(messages: Iterable<{ body: T }>): Promise<void> {
    if (this.fail) throw new Error("queue unavailable");
    for (const m of messages) this.sent.push(m.body);
  }
}

export function testEnv(overrides: Partial<Env> = {}): {
  env: Env;
  events: CaptureQueue<Row>;
  dead: CaptureQueue<DeadLetter>;
} {
  const events = new CaptureQueue<Row>();
  const dead = new CaptureQueue<DeadLetter>();
  const base = env as unknown as Env;
  return {
    env: {
      ...base,
      EVENTS_QUEUE: events as unknown as Queue<Row>,
      DEAD_LETTERS: dead as unknown as Queue<DeadLetter>,
      ...overrides,
    },
    events,
    dead,
  };
}

export interface FakeGoogle extends Io {
  tokenRequests: number;
  inserts: { url: string; rows: { insertId: string; json: Record<string, unknown> }[] }[];
  publishes: { url: string; messages: { data: string; attributes: Record<string, string> }[] }[];
  /** Answers the next insertAll calls with these (status, body) before succeeding. */
  script: { status: number; body: unknown }[];
  /** … and the next publish calls with these. */
  publishScript: { status: number; body: unknown }[];
  clock: number;
}

/** A fake Google: the token endpoint and BigQuery's insertAll. */
export function fakeGoogle(): FakeGoogle {
  const g: FakeGoogle = {
    tokenRequests: 0,
    inserts: [],
    publishes: [],
    script: [],
    publishScript: [],
    clock: 1_790_000_000_000,
    now: () => g.clock,
    fetch: async (input, init) => {
      const url = String(input);
      if (url === "https://oauth2.test/token") {
        g.tokenRequests++;
        const form = new URLSearchParams(String(init?.body));
        const assertion = form.get("assertion") ?? "";
        if (form.get("grant_type") !== "urn:ietf:params:oauth:grant-type:jwt-bearer" || assertion.split(".").length !== 3) {
          return Response.json({ error: "invalid_grant" }, { status: 400 });
        }
        return Response.json({ access_token: `ya29.fake-${g.tokenRequests}`, expires_in: 3600, token_type: "Bearer" });
      }
      if (url.endsWith(":publish")) {
        const next = g.publishScript.shift();
        if (next) return Response.json(next.body, { status: next.status });
        g.publishes.push({ url, messages: JSON.parse(String(init?.body)).messages });
        return Response.json({ messageIds: ["1"] });
      }
      if (url.includes("/insertAll")) {
        const body = JSON.parse(String(init?.body));
        const next = g.script.shift();
        if (next) return Response.json(next.body, { status: next.status });
        g.inserts.push({ url, rows: body.rows });
        return Response.json({ kind: "bigquery#tableDataInsertAllResponse" });
      }
      return new Response("not found", { status: 404 });
    },
  };
  return g;
}
