// Integration test: `wrangler dev` serving the Worker, its queue consumer writing to the BigQuery
// emulator (through a proxy this script can take down), and a local Google token endpoint that
// verifies the service-account JWT. Checks that events posted to /track are queryable in the
// emulator's `events` table with their enrichment, that during an outage they wait in the queue
// and arrive once BigQuery is back, that /go clicks land in `email_clicks`, and that one token
// serves every batch.
//
// Needs OIE_BQ_EMULATOR=http://127.0.0.1:PORT (scripts/test starts the emulator); without it the
// test is skipped, unless CI=true, where that is a failure.

import { createServer, request as httpRequest } from "node:http";
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { bigQuery, listen, repo, sleep, startTokenServer, startWorker, waitFor } from "./dev.mjs";

const emulator = process.env.OIE_BQ_EMULATOR;
if (!emulator) {
  const message = "integration: OIE_BQ_EMULATOR is not set; the BigQuery integration test did not run";
  if (process.env.CI === "true") {
    console.error(message);
    process.exit(1);
  }
  console.log(`${message} (skipped)`);
  process.exit(0);
}

const project = "test-proj";
const dataset = `worker_it_${randomUUID().slice(0, 8).replace(/-/g, "")}`;
const failures = [];
const check = (ok, what) => {
  console.log(`${ok ? "ok" : "FAILED"} — ${what}`);
  if (!ok) failures.push(what);
};

const { call: bq, query } = bigQuery(emulator, project);

// The schema, as `oie bigquery apply` would create it.
console.log(`integration: dataset ${dataset} on ${emulator}`);
await bq("DELETE", `/datasets/${dataset}?deleteContents=true`);
await bq("POST", "/datasets", { datasetReference: { projectId: project, datasetId: dataset } });
const schema = readFileSync(join(repo, "sql/bigquery/schema.sql"), "utf8");
for (const statement of schema.split(";\n")) {
  if (statement.split("\n").some((l) => l.trim() && !l.trim().startsWith("--"))) {
    await query(statement.replaceAll("${dataset}", dataset));
  }
}

// BigQuery behind a proxy that can be taken down (connections refused while down).
const proxy = { down: false, attempts: 0, refused: 0 };
const proxyServer = createServer((req, res) => {
  proxy.attempts++;
  if (proxy.down) {
    proxy.refused++;
    req.socket.destroy();
    return;
  }
  const target = new URL(req.url, emulator);
  const upstream = httpRequest(target, { method: req.method, headers: { ...req.headers, host: target.host } }, (up) => {
    res.writeHead(up.statusCode ?? 502, up.headers);
    up.pipe(res);
  });
  upstream.on("error", () => res.destroy());
  req.pipe(upstream);
});
const proxyPort = await listen(proxyServer);

const tokens = await startTokenServer();
const worker = await startWorker({
  tokenUrl: tokens.stats.url,
  vars: {
    ALLOWED_ORIGINS: "https://www.acme.example",
    BQ_PROJECT: project,
    BQ_DATASET: dataset,
    BQ_BASE_URL: `http://127.0.0.1:${proxyPort}`,
    PUBSUB_TOPIC: "",
  },
});
const base = worker.base;

async function stop() {
  await worker.stop();
  tokens.close();
  proxyServer.close();
  proxyServer.closeAllConnections();
}

let exitCode = 0;
try {
  const event = (id, extra = {}) => ({
    eventId: id, type: "pageview", timestamp: Date.now(), sessionId: "it-s1", visitorId: "it-v1",
    url: "https://www.acme.example/pricing", path: "/pricing", ...extra,
  });
  const post = (events) =>
    fetch(`${base}/track`, {
      method: "POST",
      headers: { origin: "https://www.acme.example", "content-type": "text/plain", "user-agent": "oie-integration/1.0" },
      body: JSON.stringify({ v: 1, events }),
    });
  const stored = async (ids) => {
    const rows = await query(
      `SELECT eventId, eventType, visitorId, userAgent, serverTimestamp, receivedAt, ip, data FROM \`${dataset}.events\` WHERE eventId IN (${ids.map((i) => `'${i}'`).join(",")})`,
    );
    return rows.length === ids.length ? rows : null;
  };

  // 1. Events arrive in BigQuery with their enrichment.
  const first = [];
  for (let b = 0; b < 3; b++) {
    const batch = Array.from({ length: 10 }, (_, i) => event(`it-${b}-${i}`, i === 0 ? { type: "scroll_depth", data: { depth: 75 } } : {}));
    first.push(...batch.map((e) => e.eventId));
    const r = await post(batch);
    check(r.status === 202, `POST /track answers 202 (batch ${b + 1})`);
  }
  const rows = await waitFor("30 events in BigQuery", 60, () => stored(first));
  check(rows.length === 30, "30 events are queryable in the emulator's events table");
  const sample = rows.find((r) => r.eventId === "it-0-0");
  check(sample?.userAgent === "oie-integration/1.0", "the user agent was recorded");
  check(Number(sample?.serverTimestamp) > 0 && sample?.receivedAt !== null, "server timestamp and receivedAt were set at the edge");
  check(sample?.eventType === "scroll_depth" && JSON.parse(sample.data).depth === 75, "type and data kept");

  // 2. BigQuery down: events wait in the queue, then arrive once it is back.
  proxy.down = true;
  const during = [event("it-outage-1"), event("it-outage-2")];
  check((await post(during)).status === 202, "POST /track still answers 202 during the outage");
  await waitFor("the consumer to try and fail", 30, () => proxy.refused > 0);
  check((await stored(["it-outage-1", "it-outage-2"])) === null, "nothing written while BigQuery is down");
  await sleep(2000);
  proxy.down = false;
  const after = await waitFor("the queued events after the outage", 90, () => stored(["it-outage-1", "it-outage-2"]));
  check(after.length === 2, `events queued during the outage arrived once BigQuery was back (${proxy.refused} refused attempts)`);

  // 3. A click on a tracked link.
  const go = await fetch(`${base}/go?i=it-v1&to=%2Fpricing`, { redirect: "manual" });
  check(go.status === 302 && go.headers.get("location") === "/pricing?i=it-v1", "/go redirects with i appended");
  const clicks = await waitFor("the click in email_clicks", 60, async () => {
    const r = await query(`SELECT visitorId, target FROM \`${dataset}.email_clicks\` WHERE visitorId = 'it-v1'`);
    return r.length ? r : null;
  });
  check(clicks[0]?.target === "/pricing?i=it-v1", "the click is queryable in email_clicks");

  // 4. One token for every batch.
  check(tokens.stats.requests === 1 && tokens.stats.refused === 0, `one service-account token served every batch (${tokens.stats.requests} requested)`);
} catch (e) {
  console.error(e);
  console.error(worker.log.slice(-4000));
  exitCode = 1;
} finally {
  await stop();
  await bq("DELETE", `/datasets/${dataset}?deleteContents=true`).catch(() => {});
}
if (failures.length) {
  console.error(`integration: ${failures.length} check(s) failed`);
  console.error(worker.log.slice(-4000));
  exitCode = 1;
}
process.exit(exitCode);
