/** Bindings and settings of the Worker (wrangler.jsonc; secrets via `wrangler secret put`). */
export interface Env {
  /** Origins allowed to POST /track, comma-separated. */
  ALLOWED_ORIGINS: string;
  /** Hosts /go may redirect to besides relative paths, comma-separated. */
  REDIRECT_HOSTS: string;
  BQ_PROJECT: string;
  BQ_DATASET: string;
  BQ_BASE_URL: string;
  PUBSUB_BASE_URL: string;
  /** Topic for real-time events ("" = off). */
  PUBSUB_TOPIC: string;
  /** Event types published to PUBSUB_TOPIC; "pageview:pricing" = pageviews of pricing pages. */
  PUBSUB_EVENT_TYPES: string;
  /** "true" lets /personalize answer the lead's level; anything else leaves it out. */
  PERSONALIZE_LEVEL?: string;
  /** Per-address limits (the rate limiting binding); unbound means no limit. */
  LOOKUP_LIMITER?: RateLimit;
  GO_LIMITER?: RateLimit;
  TRACK_LIMITER?: RateLimit;
  /** Secret: bearer token for DELETE /visitors/:id (erasure is off without it). */
  ADMIN_TOKEN?: string;
  /** Secret: HMAC-SHA256 key for server-side senders (X-OIE-Signature). */
  EVENT_SIGNING_SECRET?: string;
  /** Secret: the service-account key JSON (client_email, private_key, token_uri). */
  GCP_SERVICE_ACCOUNT?: string;
  IDENTITY_STORE: KVNamespace;
  PERSONALIZATION: KVNamespace;
  EVENTS_QUEUE: Queue<Row>;
  /** The dead-letter queue: rows BigQuery refuses for good, moments Pub/Sub never took. */
  DEAD_LETTERS: Queue<DeadLetter>;
  /** The streaming scorer, a Durable Object per identified visitor (scorer.ts). */
  SCORER?: DurableObjectNamespace<import("./scorer").VisitorScorer>;
  /** Topic for hot-lead moments from the streaming scorer ("" or unset = the scorer is off). */
  HOT_LEADS_TOPIC?: string;
  /** Page classes as `{"pricing": ["/pricing%", …], …}` (default: those of sql/bigquery/page_classes.sql). */
  PAGE_CLASSES?: string;
}

/** The BigQuery tables the Worker writes. */
export type Table = "events" | "email_clicks" | "erasure_requests" | "hot_lead_alerts";

/** One row on its way to BigQuery (one queue message). */
export interface Row {
  table: Table;
  /** insertAll's insertId: BigQuery drops a repeat of it for about a minute. */
  insertId: string;
  json: Record<string, unknown>;
}

/** A row BigQuery refused for good, with why. */
export interface DeadRow extends Row {
  error: string;
}

/** A hot-lead moment the streaming scorer could not publish, with why. */
export interface DeadMoment {
  kind: "hot_lead_moment";
  id: string;
  moment: unknown;
  error: string;
}

export type DeadLetter = DeadRow | DeadMoment;

/** What the Worker does outside itself; tests replace it. */
export interface Io {
  fetch: typeof fetch;
  now: () => number;
}

export const defaultIo: Io = {
  fetch: (input, init) => fetch(input, init),
  now: () => Date.now(),
};

/** A comma-separated setting as a list. */
export function list(value: string | undefined): string[] {
  return (value ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}
