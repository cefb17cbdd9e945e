// Benchmark of the Worker's POST /track under `wrangler dev` (workerd) on loopback: wrk with
// 5-event batches (bench/track.lua), printing requests per second, p50/p99 latency, and the
// workerd CPU time per request. The queue consumer writes to a local insertAll sink, so its work
// is counted too. It runs twice, with the streaming scorer off and on (its Durable Objects
// publishing to the same sink), and prints what the scorer costs: CPU per event and storage per
// visitor. Bounded: DURATION seconds (default 10) a run.

import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { createServer } from "node:http";
import { join } from "node:path";
import { listen, repo, sleep, startTokenServer, startWorker } from "./dev.mjs";

const duration = Number(process.env.DURATION ?? 10);
const connections = Number(process.env.CONNECTIONS ?? 8);
const visitors = Number(process.env.VISITORS ?? 2000);
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

/** How many Durable Objects there are under `state`, and their SQLite databases' mean size
 * (page count × page size, WAL included: what the objects store, not what the files preallocate). */
function objectFiles(state) {
  const files = [];
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (dir.includes("VisitorScorer") && entry.name.endsWith(".sqlite")) files.push(path);
    }
  };
  walk(state);
  const sizes = spawnSync("python3", ["-c", "import sqlite3,sys\nfor p in sys.argv[1:]:\n c=sqlite3.connect(p); print(c.execute('PRAGMA page_count').fetchone()[0]*c.execute('PRAGMA page_size').fetchone()[0])", ...files], { encoding: "utf8" })
    .stdout.split("\n")
    .filter(Boolean)
    .map(Number);
  return { files: files.length, mean: sizes.reduce((a, b) => a + b, 0) / Math.max(1, sizes.length) };
}

/** One wrk run against a fresh `wrangler dev` with `vars`; prints and returns its figures. */
async function run(label, vars) {
  const state = mkdtempSync(join(tmpdir(), "oie-bench-state-"));
  const worker = await startWorker({
    tokenUrl: tokens.stats.url,
    state,
    limits: false,
    vars: { ALLOWED_ORIGINS: "https://www.acme.example", BQ_BASE_URL: `http://127.0.0.1:${sinkPort}`, PUBSUB_BASE_URL: `http://127.0.0.1:${sinkPort}`, PUBSUB_TOPIC: "", ...vars },
  });
  inserted = 0;
  try {
    // Warm up (first requests compile the Worker).
    for (let i = 0; i < 20; i++) {
      await fetch(`${worker.base}/track`, { method: "POST", headers: { origin: "https://www.acme.example" }, body: JSON.stringify({ v: 1, events: [{ eventId: `warm${i}`, type: "pageview", timestamp: 1, sessionId: "s", url: "u", path: "/" }] }) });
    }
    const cpuBefore = workerdCpu();
    const out = execFileSync(
      "wrk",
      ["-t2", `-c${connections}`, `-d${duration}s`, "--latency", "-s", join(repo, "bench/track.lua"), `${worker.base}/track`, "--", "https://www.acme.example", String(visitors)],
      { encoding: "utf8" },
    );
    await sleep(4000); // let the consumer and the objects finish
    const cpu = workerdCpu() - cpuBefore;
    const value = (name) => Number(new RegExp(`^${name} (\\S+)`, "m").exec(out)?.[1] ?? NaN);
    const accepted = value("ACCEPTED_EVENTS");
    const seconds = value("SECONDS");
    const requests = accepted / 5 + value("BUSY_REQUESTS") + value("OTHER_REQUESTS");
    console.log(`Worker POST /track, ${label} (wrangler dev, workerd), 5-event batches, ${connections} connections, ${seconds.toFixed(1)} s on loopback:`);
    console.log(`  requests/s: ${(requests / seconds).toFixed(0)} (${(accepted / seconds).toFixed(0)} events/s accepted)`);
    console.log(`  latency p50 ${value("P50_MS")} ms, p99 ${value("P99_MS")} ms`);
    console.log(`  workerd CPU per request: ${((cpu / requests) * 1000).toFixed(2)} ms (includes the queue consumer's inserts)`);
    console.log(`  503 answers: ${value("BUSY_REQUESTS")}, other non-202: ${value("OTHER_REQUESTS")}; rows inserted by the consumer so far: ${inserted} of ${accepted}`);
    if (value("BUSY_REQUESTS") + value("OTHER_REQUESTS") > 0) {
      const reasons = [...new Set(worker.log.split("\n").filter((l) => /cannot queue|error/i.test(l)))].slice(0, 5);
      console.log(`  why: ${reasons.join(" | ") || "(nothing logged)"}`);
    }
    return { cpuPerEvent: cpu / accepted, objects: objectFiles(state), accepted };
  } finally {
    await worker.stop();
    rmSync(state, { recursive: true, force: true });
  }
}

try {
  const off = await run("streaming scorer off", { HOT_LEADS_TOPIC: "" });
  const on = await run("streaming scorer on", { HOT_LEADS_TOPIC: "hot-leads" });
  const extra = (on.cpuPerEvent - off.cpuPerEvent) * 1000;
  console.log(`Streaming scorer (a Durable Object per visitor, ${visitors} visitors): ${extra.toFixed(3)} ms of workerd CPU per event on top of ${(off.cpuPerEvent * 1000).toFixed(3)} ms (×${(on.cpuPerEvent / off.cpuPerEvent).toFixed(2)}),`);
  const perVisitor = on.accepted / Math.max(1, on.objects.files);
  console.log(`  storage: ${on.objects.files} objects, ${(on.objects.mean / 1024).toFixed(1)} KiB of SQLite database per visitor for ${perVisitor.toFixed(0)} events each`);
} finally {
  tokens.close();
  sink.close();
  sink.closeAllConnections();
}
