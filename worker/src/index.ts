/** The Outbound Intent Engine's edge ingest (Cloudflare Worker).
 *
 * - `POST /track`: pixel events, validated against the ingest contract, enriched at the edge,
 *   queued for BigQuery (a BigQuery outage loses nothing), optionally published to Pub/Sub.
 * - `GET /identify`, `GET /personalize`: what a page may show about a visitor, from KV.
 * - `GET /go`: records an e-mail click and redirects (never to a foreign host).
 * - `DELETE /visitors/:id`: erasure (admin token).
 * - `GET /health`.
 * - `VisitorScorer`: the streaming scorer, a Durable Object per identified visitor (scorer.ts).
 * - queue consumer: batch inserts into BigQuery with retries and a dead-letter queue. */

import { preflight } from "./cors";
import { defaultIo, type Env, type Row } from "./env";
import { json, reject } from "./http";
import { erase, go, identify, personalize } from "./pages";
import { consume } from "./queue";
import { track } from "./track";

export { VisitorScorer } from "./scorer";

export default {
  async fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
    const { pathname } = new URL(request.url);
    const method = request.method;
    if (pathname === "/track") {
      if (method === "POST") return track(request, env, ctx, defaultIo);
      if (method === "OPTIONS") return preflight(request, env);
      return reject(405, "use POST /track", { allow: "POST, OPTIONS" });
    }
    if (method === "GET" && pathname === "/identify") return identify(request, env);
    if (method === "GET" && pathname === "/personalize") return personalize(request, env);
    if (method === "GET" && pathname === "/go") return go(request, env, defaultIo);
    if (method === "GET" && pathname === "/health") return json({ status: "ok" });
    const visitor = /^\/visitors\/([^/]+)$/.exec(pathname);
    if (visitor?.[1] !== undefined && method === "DELETE") {
      let id: string;
      try {
        id = decodeURIComponent(visitor[1]);
      } catch {
        return reject(400, "the visitor id is not valid percent-encoded UTF-8");
      }
      return erase(request, env, defaultIo, id);
    }
    return reject(404, `no route for ${method} ${pathname}`);
  },

  async queue(batch: MessageBatch<Row>, env: Env): Promise<void> {
    await consume(batch, env, defaultIo);
  },
} satisfies ExportedHandler<Env, Row>;
