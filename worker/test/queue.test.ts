import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import type { Row } from "../src/env";
import { resetToken } from "../src/google";
import { backoff, consume } from "../src/queue";
import { fakeGoogle, testEnv } from "./helpers";

function rows(n: number, table: Row["table"] = "events", from = 0): Row[] {
  return Array.from({ length: n }, (_, i) => ({
    table,
    insertId: `e${from + i}`,
    json: { eventId: `e${from + i}`, sessionId: "s", eventType: "pageview", timestamp: i, receivedAt: "2026-11-26T10:00:00.000Z" },
  }));
}

function batch(items: Row[], attempts = 1) {
  return createMessageBatch<Row>(
    "oie-events",
    items.map((body, i) => ({ id: `m${i}`, timestamp: new Date(1_790_000_000_000), attempts, body })),
  );
}

async function run(items: Row[], google = fakeGoogle(), attempts = 1) {
  const { env, dead } = testEnv({ BQ_BASE_URL: "https://bigquery.test" });
  const b = batch(items, attempts);
  const ctx = createExecutionContext();
  await consume(b, env, google);
  return { result: await getQueueResult(b, ctx), google, dead };
}

describe("queue consumer", () => {
  beforeEach(() => resetToken());

  it("writes a batch with insertAll, one insertId per row, and acks it", async () => {
    const { result, google } = await run([...rows(3), ...rows(2, "email_clicks", 10)]);
    expect(result.explicitAcks.sort()).toEqual(["m0", "m1", "m2", "m3", "m4"]);
    expect(result.retryMessages).toEqual([]);
    expect(google.inserts.map((i) => i.url)).toEqual([
      "https://bigquery.test/bigquery/v2/projects/test-proj/datasets/oie/tables/events/insertAll",
      "https://bigquery.test/bigquery/v2/projects/test-proj/datasets/oie/tables/email_clicks/insertAll",
    ]);
    expect(google.inserts[0]?.rows.map((r) => r.insertId)).toEqual(["e0", "e1", "e2"]);
  });

  it("splits more than 500 rows into several requests", async () => {
    const { google } = await run(rows(1200));
    expect(google.inserts.map((i) => i.rows.length)).toEqual([500, 500, 200]);
  });

  it("mints one token for many batches and renews it before it expires", async () => {
    const google = fakeGoogle();
    for (let i = 0; i < 5; i++) await run(rows(10, "events", i * 10), google);
    expect(google.tokenRequests).toBe(1);
    expect(google.inserts).toHaveLength(5);
    google.clock += 56 * 60 * 1000; // within five minutes of the hour
    await run(rows(1), google);
    expect(google.tokenRequests).toBe(2);
  });

  it("retries every row with backoff when BigQuery is down", async () => {
    const google = fakeGoogle();
    google.script.push({ status: 503, body: { error: { message: "backend error" } } });
    const { result } = await run(rows(3), google, 3);
    expect(result.explicitAcks).toEqual([]);
    expect(result.retryMessages.map((r: { msgId: string }) => r.msgId)).toEqual(["m0", "m1", "m2"]);
    expect([1, 2, 3, 5, 9, 20].map(backoff)).toEqual([2, 4, 8, 32, 300, 300]);
    // The delay given to each retry follows the message's attempts (the test harness's
    // result does not carry delays, so look at the calls themselves).
    const delays: (number | undefined)[] = [];
    const messages = rows(2).map((body, i) => ({
      id: `x${i}`,
      timestamp: new Date(),
      attempts: 3 + i,
      body,
      ack: () => {},
      retry: (options?: { delaySeconds?: number }) => delays.push(options?.delaySeconds),
    }));
    google.script.push({ status: 500, body: {} });
    const { env } = testEnv({ BQ_BASE_URL: "https://bigquery.test" });
    await consume({ queue: "oie-events", messages, ackAll: () => {}, retryAll: () => {} } as unknown as MessageBatch<Row>, env, google);
    expect(delays).toEqual([8, 16]);
  });

  it("retries when Google is unreachable", async () => {
    const google = fakeGoogle();
    const real = google.fetch;
    google.fetch = async (input, init) => {
      if (String(input).includes("oauth2")) throw new Error("connection refused");
      return real(input, init);
    };
    const { result } = await run(rows(2), google);
    expect(result.retryMessages.map((r: { msgId: string }) => r.msgId)).toEqual(["m0", "m1"]);
  });

  it("handles insertErrors row by row: invalid rows to the dead-letter queue, stopped rows retried", async () => {
    const google = fakeGoogle();
    google.script.push({
      status: 200,
      body: {
        insertErrors: [
          { index: 1, errors: [{ reason: "invalid", message: "no such field: bogus" }] },
          { index: 2, errors: [{ reason: "stopped", message: "" }] },
        ],
      },
    });
    const { result, dead } = await run(rows(3), google);
    expect(result.explicitAcks.sort()).toEqual(["m0", "m1"]);
    expect(result.retryMessages.map((r: { msgId: string }) => r.msgId)).toEqual(["m2"]);
    expect(dead.sent).toHaveLength(1);
    expect(dead.sent[0] && "insertId" in dead.sent[0] && dead.sent[0].insertId).toBe("e1");
    expect(dead.sent[0]?.error).toContain("invalid: no such field: bogus");
  });
});
