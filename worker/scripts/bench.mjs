// Benchmark of the Worker's POST /track under `wrangler dev` (workerd) on loopback: wrk with
// 5-event batches (bench/track.lua), printing requests per second, p50/p99 latency, and the
// workerd CPU time per request. The queue consumer writes to a local insertAll sink, so its work
// is counted too. Bounded: DURATION seconds (default 10).

import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { createServer } from "node:http";
import { join } from "node:path";
import { listen, repo, sleep, startTokenServer, startWorker } from "./dev.mjs";

const duration = Number(process.env.DURATION ?? 10);
const connections = Number(process.env.CONNECTIONS ?? 8);
if (spawnSync("wrk", ["--version"]).error) {
  execFileSync("sh", ["-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk > /dev/null"], { stdio: "inherit" });
}

let inserted = 0;
const sink = createServer((req, res) => {
  let body = "";
  req.on("data", (c) => (body += c));
  req.on("end", () => {
    inserted += JSON.parse(body || "{}").rows?.length ?? 0;
    res.writeHead(200, { "content-type": "application/json" });
    res.end('{"kind":"bigquery#tableDataInsertAllResponse"}');
  });
});
const sinkPort = await listen(sink);
const tokens = await startTokenServer();
const worker = await startWorker({
  tokenUrl: tokens.stats.url,
  vars: { ALLOWED_ORIGINS: "https://www.acme.example", BQ_BASE_URL: `http://127.0.0.1:${sinkPort}`, PUBSUB_TOPIC: "" },
});

/** CPU seconds used so far by every workerd process under wrangler. */
function workerdCpu() {
  const ticks = Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim());
  let total = 0;
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8");
      if (!cmd.includes("workerd")) continue;
      const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
      total += (Number(fields[11]) + Number(fields[12])) / ticks;
    } catch {}
  }
  return total;
}

try {
  // Warm up (first requests compile the Worker).
  for (let i = 0; i < 20; i++) {
    await fetch(`${worker.base}/track`, { method: "POST", headers: { origin: "https://www.acme.example" }, body: JSON.stringify({ v: 1, events: [{ eventId: `warm${i}`, type: "pageview", timestamp: 1, sessionId: "s", url: "u", path: "/" }] }) });
  }
  const cpuBefore = workerdCpu();
  const out = execFileSync(
    "wrk",
    ["-t2", `-c${connections}`, `-d${duration}s`, "--latency", "-s", join(repo, "bench/track.lua"), `${worker.base}/track`, "--", "https://www.acme.example"],
    { encoding: "utf8" },
  );
  const cpu = workerdCpu() - cpuBefore;
  const value = (name) => Number(new RegExp(`^${name} (\\S+)`, "m").exec(out)?.[1] ?? NaN);
  const accepted = value("ACCEPTED_EVENTS");
  const seconds = value("SECONDS");
  const requests = accepted / 5 + value("BUSY_REQUESTS") + value("OTHER_REQUESTS");
  await sleep(4000); // let the consumer drain
  console.log(`Worker POST /track (wrangler dev, workerd), 5-event batches, ${connections} connections, ${seconds.toFixed(1)} s on loopback:`);
  console.log(`  requests/s: ${(requests / seconds).toFixed(0)} (${(accepted / seconds).toFixed(0)} events/s accepted)`);
  console.log(`  latency p50 ${value("P50_MS")} ms, p99 ${value("P99_MS")} ms`);
  console.log(`  workerd CPU per request: ${((cpu / requests) * 1000).toFixed(2)} ms (includes the queue consumer's inserts)`);
  console.log(`  503 answers: ${value("BUSY_REQUESTS")}, other non-202: ${value("OTHER_REQUESTS")}; rows inserted by the consumer so far: ${inserted} of ${accepted}`);
  if (value("BUSY_REQUESTS") + value("OTHER_REQUESTS") > 0) {
    const reasons = [...new Set(worker.log.split("\n").filter((l) => /cannot queue|error/i.test(l)))].slice(0, 5);
    console.log(`  why: ${reasons.join(" | ") || "(nothing logged)"}`);
  }
} finally {
  worker.stop();
  tokens.close();
  sink.close();
  sink.closeAllConnections();
}
