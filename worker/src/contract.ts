/** The ingest contract (contract/ingest.schema.json), checked with a validator made for Workers
 * (no code generation, which workerd forbids). */

import { Validator, type OutputUnit } from "@cfworker/json-schema";
import schema from "../../contract/ingest.schema.json";

/** The body limits the contract states. */
export const MAX_BODY = 64 * 1024;
export const MAX_EVENTS = 50;

const validator = new Validator(schema as object, "2020-12", false);

export interface Event {
  eventId: string;
  type: string;
  timestamp: number;
  sessionId: string;
  visitorId?: string | null;
  url: string;
  path: string;
  title?: string;
  referrer?: string;
  data?: Record<string, unknown>;
}

export type Parsed = { ok: true; events: Event[] } | { ok: false; reason: string };

/** Parses and validates a /track body; the reason names the first offending place. */
export function parse(text: string): Parsed {
  let body: unknown;
  try {
    // Half a surrogate pair becomes U+FFFD, as `oie run` reads it (Rust strings cannot hold one).
    body = JSON.parse(text, (_key, value: unknown) => (typeof value == "string" ? wellFormed(value) : value));
  } catch (e) {
    return { ok: false, reason: `body is not JSON: ${(e as Error).message}` };
  }
  const events = (body as { events?: unknown } | null)?.events;
  if (Array.isArray(events) && events.length > MAX_EVENTS) {
    return { ok: false, reason: `/events: ${events.length} events; at most ${MAX_EVENTS} per request` };
  }
  const result = validator.validate(body);
  if (!result.valid) {
    return { ok: false, reason: describe(result.errors) };
  }
  return { ok: true, events: (body as { events: Event[] }).events };
}

/** `text` with every half surrogate pair replaced by U+FFFD (String.prototype.toWellFormed). */
export const wellFormed = (text: string): string =>
  text.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, "\ufffd");

/** The most specific error: the deepest instance location, then the deepest keyword. */
function describe(errors: OutputUnit[]): string {
  const best = [...errors].sort(
    (a, b) =>
      depth(b.instanceLocation) - depth(a.instanceLocation) ||
      depth(b.keywordLocation) - depth(a.keywordLocation),
  )[0];
  if (!best) return "body does not match the ingest contract";
  const at = best.instanceLocation.replace(/^#/, "") || "/";
  return `${at}: ${best.error}`;
}

function depth(pointer: string): number {
  return pointer.split("/").length;
}
