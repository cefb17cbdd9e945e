// Events wait here until sent: batches of 5 or every 10 s, kept in localStorage (at most 100,
// oldest dropped first) so they survive reloads, retried with backoff on network errors, 5xx
// and 429 (honouring Retry-After), dropped on 400 and 413 (resending would never work).

import { KV, readJSON } from './store';

export const QUEUE_KEY = '_oie_queue';
export const MAX_QUEUED = 100;
export const BATCH = 5;
export const FLUSH_MS = 10_000;
const MAX_PER_REQUEST = 50;
/** The servers refuse bodies over 64 KB (413, never retried): a batch stays under 60 KB of events. */
const MAX_BATCH_BYTES = 60_000;

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

/** The queue of one page. */
export interface Queue {
  readonly size: number;
  /** Queues an event; `now` sends at once (a form submission should alert within seconds). */
  push(event: Event, now?: boolean): void;
  /** Sends what is queued, one request of up to 50 events at a time. */
  flush(): Promise<void> | undefined;
  /**
   * The page is going away: hand everything to sendBeacon. While the collector is failing a
   * beacon most likely fails too, so the events also stay stored and are sent again from the
   * next page (the server drops duplicates by eventId).
   */
  flushOnExit(): void;
  /** Consent withdrawn: forget everything. */
  clear(): void;
}

/** `new Queue(kv, transport, clock)`: closures rather than a class, which minify smaller. */
export const Queue = function (kv: KV, transport: Transport, clock: Clock): Queue {
  // Whatever storage holds (an array of events unless tampered with), only events are kept.
  let events: Event[] = ([] as Event[]).concat(readJSON(kv, QUEUE_KEY) as Event[]).filter((e) => typeof e?.eventId == 'string');
  /** When the scheduled flush is due (0: none is). */
  let due = 0;
  /** What a fetch is carrying now (keepalive fetches finish even after the page is gone). */
  let inflight: Event[] = [];
  let failures = 0;
  let blockedUntil = 0;

  const save = (kept: Event[]) => {
    events = kept;
    if (kept.length) kv.set(QUEUE_KEY, JSON.stringify(kept));
    else kv.del(QUEUE_KEY);
  };
  const drop = (batch: Event[]) => save(events.filter((e) => !batch.includes(e)));
  /** The first events that fit one request: at most 50, under 60 KB (the first always goes: one
   * event is at most ~15 KB). */
  const fitting = (list: Event[]) => {
    let bytes = 0;
    return list.filter((e, i) => (i < MAX_PER_REQUEST && (bytes += JSON.stringify(e).length) < MAX_BATCH_BYTES) || !i);
  };
  const body = (batch: Event[]) => JSON.stringify({ v: 1, events: batch });

  /** Flushes in `ms`, unless a flush is already due sooner. */
  const schedule = (ms: number) => {
    const at = clock.now() + ms;
    if (due && due <= at) return;
    due = at;
    clock.setTimeout(() => {
      due = 0;
      void flush();
    }, ms);
  };

  const flush = (): Promise<void> | undefined => {
    const blocked = blockedUntil - clock.now();
    // Timers can fire early by the wall clock: a blocked flush is tried again, never dropped.
    if (blocked > 0) schedule(blocked);
    if (blocked > 0 || inflight.length || !events.length) return;
    const batch = fitting(events);
    const sending = transport.send(body(batch));
    inflight = batch;
    return sending.then((r) => {
      inflight = [];
      // Sent (or refused for good): what came meanwhile goes at once. Else back off.
      let wait = 0;
      if (r.ok || !r.retry) {
        failures = 0;
        drop(batch);
      } else blockedUntil = clock.now() + (wait = Math.max(Math.min(60_000, 1000 * 2 ** failures++), r.afterMs || 0));
      schedule(wait);
    });
  };

  return {
    get size() {
      return events.length;
    },
    push(event, now) {
      save([...events, event].slice(-MAX_QUEUED));
      if (now || events.length >= BATCH) void flush();
      else schedule(FLUSH_MS);
    },
    flush,
    flushOnExit() {
      // One beacon (browsers cap them at 64 KB); any rest stays for the next page.
      const batch = fitting(events.filter((e) => !inflight.includes(e)));
      if (batch.length && transport.beacon(body(batch)) && !failures) drop(batch);
    },
    clear: () => save([]),
  };
} as unknown as new (kv: KV, transport: Transport, clock: Clock) => Queue;
