// Starts the Worker under `wrangler dev` for black-box tests and benchmarks, with its vars and
// secrets overridden in a throwaway config, plus small local servers it can talk to.

import { spawn } from "node:child_process";
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
 * `tokenUrl`. Returns the base URL, the process and a stop function. */
export async function startWorker({ vars, tokenUrl }) {
  const work = mkdtempSync(join(tmpdir(), "oie-worker-"));
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
  writeFileSync(join(work, "wrangler.json"), JSON.stringify(config, null, 2));
  const privateKey = readFileSync(join(repo, "fakes/keys/test_private.pem"), "utf8");
  const account = JSON.stringify({ client_email: SERVICE_ACCOUNT, private_key: privateKey, token_uri: tokenUrl });
  writeFileSync(join(work, ".dev.vars"), `GCP_SERVICE_ACCOUNT='${account}'\nADMIN_TOKEN='local-admin'\n`);
  const port = await freePort();
  const child = spawn(
    join(root, "node_modules/.bin/wrangler"),
    ["dev", "--config", join(work, "wrangler.json"), "--ip", "127.0.0.1", "--port", String(port), "--persist-to", join(work, "state"), "--log-level", "warn"],
    { cwd: work, env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true" }, stdio: ["ignore", "pipe", "pipe"] },
  );
  const worker = { base: `http://127.0.0.1:${port}`, child, log: "" };
  child.stdout.on("data", (d) => (worker.log += d));
  child.stderr.on("data", (d) => (worker.log += d));
  worker.stop = () => {
    child.kill("SIGTERM");
    rmSync(work, { recursive: true, force: true });
  };
  await waitFor("wrangler dev", 60, async () => (await fetch(`${worker.base}/health`).catch(() => null))?.ok);
  return worker;
}
