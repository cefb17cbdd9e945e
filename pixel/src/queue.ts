// Events wait here until sent: batches of 5 or every 10 s, kept in localStorage (at most 100,
// oldest dropped first) so they survive reloads, retried with backoff on network errors, 5xx
// and 429 (honouring Retry-After), dropped on 400 and 413 (resending would never work).

import { KV, readJSON } from './store';

export const QUEUE_KEY = '_oie_queue';
export const MAX_QUEUED = 100;
export const BATCH = 5;
export const FLUSH_MS = 10_000;
const MAX_PER_REQUEST = 50;
const MAX_BACKOFF_MS = 60_000;

export type Event = Record<string, unknown> & { eventId: string };

/** What a send attempt came to. */
export type Result = { ok: true } | { ok: false; retry: boolean; afterMs?: number };

export interface Transport {
  /** Sends a body; resolves how it went (never rejects). */
  send(body: string): Promise<Result>;
  /** Hands a body to the browser for delivery after the page is gone; true if accepted. */
  beacon(body: string): boolean;
}

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
}

export class Queue {
  private events: Event[];
  private timer: unknown = null;
  private due = 0;
  private sending = false;
  /** Events a fetch is carrying now (keepalive fetches finish even after the page is gone). */
  private inflight = new Set<string>();
  private failures = 0;
  private blockedUntil = 0;

  constructor(private kv: KV, private transport: Transport, private clock: Clock) {
    this.events = (readJSON<Event[]>(kv, QUEUE_KEY) || []).filter((e) => e && typeof e.eventId === 'string');
  }

  get size(): number {
    return this.events.length;
  }

  /** Queues an event; `now` sends at once (a form submission should alert within seconds). */
  push(event: Event, now = false): void {
    this.events.push(event);
    if (this.events.length > MAX_QUEUED) this.events.splice(0, this.events.length - MAX_QUEUED);
    this.save();
    if (now || this.events.length >= BATCH) void this.flush();
    else this.schedule(FLUSH_MS);
  }

  /** Sends what is queued, one request of up to 50 events at a time. */
  flush(): Promise<void> {
    if (this.sending || !this.events.length || this.clock.now() < this.blockedUntil) return Promise.resolve();
    this.sending = true;
    const batch = this.events.slice(0, MAX_PER_REQUEST);
    batch.forEach((e) => this.inflight.add(e.eventId));
    return this.transport.send(body(batch, this.clock.now())).then((result) => this.sent(batch, result));
  }

  private sent(batch: Event[], result: Result): void {
    this.inflight.clear();
    this.sending = false;
    if (result.ok || !result.retry) {
      this.drop(batch);
      this.failures = 0;
      if (this.events.length) this.schedule(0);
      return;
    }
    this.failures++;
    const backoff = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** (this.failures - 1));
    const wait = Math.max(backoff, result.afterMs || 0);
    this.blockedUntil = this.clock.now() + wait;
    this.schedule(wait);
  }

  /**
   * The page is going away: hand everything to sendBeacon. While the collector is failing a
   * beacon most likely fails too, so the events also stay stored and are sent again from the
   * next page (the server drops duplicates by eventId).
   */
  flushOnExit(): void {
    const waiting = this.events.filter((e) => !this.inflight.has(e.eventId));
    for (let i = 0; i < waiting.length; i += MAX_PER_REQUEST) {
      const batch = waiting.slice(i, i + MAX_PER_REQUEST);
      if (!this.transport.beacon(body(batch, this.clock.now()))) return;
      if (this.failures === 0) this.drop(batch);
    }
  }

  /** Consent withdrawn: forget everything. */
  clear(): void {
    this.events = [];
    this.kv.del(QUEUE_KEY);
  }

  private drop(batch: Event[]): void {
    const sent = new Set(batch.map((e) => e.eventId));
    this.events = this.events.filter((e) => !sent.has(e.eventId));
    this.save();
  }

  private save(): void {
    if (this.events.length) this.kv.set(QUEUE_KEY, JSON.stringify(this.events));
    else this.kv.del(QUEUE_KEY);
  }

  /** Flushes in `ms`, unless a flush is already due sooner. */
  private schedule(ms: number): void {
    const due = this.clock.now() + ms;
    if (this.timer !== null && this.due <= due) return;
    this.due = due;
    this.timer = this.clock.setTimeout(() => {
      this.timer = null;
      void this.flush();
    }, ms);
  }
}

function body(events: Event[], now: number): string {
  return JSON.stringify({ v: 1, sentAt: now, events });
}
