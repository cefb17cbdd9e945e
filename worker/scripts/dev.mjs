// Starts the Worker under `wrangler dev` for black-box tests and benchmarks, with its vars and
// secrets overridden in a throwaway config, plus small local servers it can talk to.

import { spawn, spawnSync } from "node:child_process";
import { createServer } from "node:http";
import { createVerify } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const root = fileURLToPath(new URL("..", import.meta.url));
export const repo = join(root, "..");
export const SERVICE_ACCOUNT = "oie-ingest@test-proj.iam.gserviceaccount.com";

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Listens on 127.0.0.1 with an ephemeral port; returns the port. */
export function listen(server) {
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server.address().port)));
}

export async function freePort() {
  const probe = createServer();
  const port = await listen(probe);
  await new Promise((r) => probe.close(r));
  return port;
}

export async function waitFor(what, seconds, probe) {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${seconds} s waiting for ${what}`);
    await sleep(250);
  }
}

/** Google's token endpoint: verifies the assertion's RS256 signature (test public key) and
 * claims, and counts requests. */
export async function startTokenServer() {
  const publicKey = readFileSync(join(repo, "fakes/keys/test_public.pem"), "utf8");
  const stats = { requests: 0, refused: 0, url: "" };
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      stats.requests++;
      const form = new URLSearchParams(body);
      const [h, c, s] = (form.get("assertion") ?? "").split(".");
      const verifier = createVerify("RSA-SHA256");
      verifier.update(`${h}.${c}`);
      let claims = {};
      try {
        claims = JSON.parse(Buffer.from(c ?? "", "base64url").toString());
      } catch {}
      const valid =
        form.get("grant_type") === "urn:ietf:params:oauth:grant-type:jwt-bearer" &&
        s !== undefined &&
        verifier.verify(publicKey, Buffer.from(s, "base64url")) &&
        claims.iss === SERVICE_ACCOUNT &&
        claims.aud === stats.url &&
        claims.exp - claims.iat <= 3600;
      if (!valid) stats.refused++;
      res.writeHead(valid ? 200 : 400, { "content-type": "application/json" });
      res.end(JSON.stringify(valid ? { access_token: `ya29.local-${stats.requests}`, expires_in: 3600, token_type: "Bearer" } : { error: "invalid_grant" }));
    });
  });
  const port = await listen(server);
  stats.url = `http://127.0.0.1:${port}/token`;
  return { stats, close: () => (server.close(), server.closeAllConnections()) };
}

/** `wrangler dev` with `vars` merged into wrangler.jsonc's and the service account pointing at
 * `tokenUrl`. `state` keeps the local storage (KV, Durable Objects, queues) in a folder the
 * caller owns, so a restart finds it again; `kv` seeds namespaces first (`{BINDING: [{key,
 * value}]}`, written with `wrangler kv bulk put --local`); `limits: false` drops the per-address
 * rate limits (benchmarks send everything from one address). Returns the base URL, the process and
 * a stop function. */
export async function startWorker({ vars, tokenUrl, state, kv = {}, limits = true }) {
  const work = mkdtempSync(join(tmpdir(), "oie-worker-"));
  const persist = state ?? join(work, "state");
  const config = JSON.parse(
    readFileSync(join(root, "wrangler.jsonc"), "utf8")
      .split("\n")
      .filter((l) => !l.trim().startsWith("//"))
      .map((l) => l.replace(/\s\/\/ .*$/, ""))
      .join("\n"),
  );
  config.main = join(root, "src/index.ts");
  delete config.$schema;
  Object.assign(config.vars, vars);
  if (!limits) delete config.ratelimits;
  writeFileSync(join(work, "wrangler.json"), JSON.stringify(config, null, 2));
  const privateKey = readFileSync(join(repo, "fakes/keys/test_private.pem"), "utf8");
  const account = JSON.stringify({ client_email: SERVICE_ACCOUNT, private_key: privateKey, token_uri: tokenUrl });
  writeFileSync(join(work, ".dev.vars"), `GCP_SERVICE_ACCOUNT='${account}'\nADMIN_TOKEN='local-admin'\n`);
  const wrangler = join(root, "node_modules/.bin/wrangler");
  const env = { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true" };
  for (const [binding, entries] of Object.entries(kv)) {
    const file = join(work, `${binding}.json`);
    writeFileSync(file, JSON.stringify(entries));
    const put = spawnSync(wrangler, ["kv", "bulk", "put", file, "--binding", binding, "--local", "--persist-to", persist, "--config", join(work, "wrangler.json")], { cwd: work, env, encoding: "utf8" });
    if (put.status !== 0) throw new Error(`wrangler kv bulk put ${binding} failed: ${put.stderr}`);
  }
  const port = await freePort();
  const child = spawn(
    wrangler,
    ["dev", "--config", join(work, "wrangler.json"), "--ip", "127.0.0.1", "--port", String(port), "--persist-to", persist, "--log-level", "warn"],
    { cwd: work, env, stdio: ["ignore", "pipe", "pipe"] },
  );
  const worker = { base: `http://127.0.0.1:${port}`, child, log: "" };
  child.stdout.on("data", (d) => (worker.log += d));
  child.stderr.on("data", (d) => (worker.log += d));
  const exited = new Promise((resolve) => child.on("exit", resolve));
  worker.stop = async () => {
    child.kill("SIGTERM");
    await Promise.race([exited, sleep(10_000)]);
    rmSync(work, { recursive: true, force: true });
  };
  await waitFor("wrangler dev", 60, async () => (await fetch(`${worker.base}/health`).catch(() => null))?.ok);
  return worker;
}

/** The BigQuery emulator's REST API for one project: `call(method, path, body)` and
 * `query(sql, nowMs?)` (rows as objects; `nowMs` becomes the `@now` parameter). */
export function bigQuery(emulator, project) {
  const call = async (method, path, body) => {
    const response = await fetch(`${emulator}/bigquery/v2/projects/${project}${path}`, {
      method,
      headers: { authorization: "Bearer test", "content-type": "application/json" },
      body: body ? JSON.stringify(body) : undefined,
    });
    const json = await response.json().catch(() => ({}));
    if (!response.ok && method !== "DELETE") throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(json)}`);
    return json;
  };
  const query = async (sql, nowMs) => {
    const body = { query: sql, useLegacySql: false, formatOptions: { useInt64Timestamp: true } };
    if (nowMs !== undefined) {
      body.queryParameters = [{ name: "now", parameterType: { type: "TIMESTAMP" }, parameterValue: { value: new Date(nowMs).toISOString() } }];
    }
    const r = await call("POST", "/queries", body);
    if (r.errors?.length) throw new Error(`query failed: ${JSON.stringify(r.errors)}\n${sql}`);
    const fields = r.schema?.fields ?? [];
    return (r.rows ?? []).map((row) => Object.fromEntries(fields.map((f, i) => [f.name, row.f[i].v])));
  };
  return { call, query };
}
