// What storage, the network or the clock can throw at the pixel, below the tests of each part.

import { describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/hash';
import { QUEUE_KEY, Queue, Result, Transport } from '../../src/queue';
import { touchSession } from '../../src/session';
import { memoryKV } from '../../src/store';
import { safeHref, trimText } from '../../src/trackers';

const tick = () => new Promise((r) => setTimeout(r, 0));

class Clock {
  t = 1_000_000;
  timers: { at: number; fn: () => void }[] = [];
  now = () => this.t;
  setTimeout = (fn: () => void, ms: number) => this.timers.push({ at: this.t + ms, fn });
  /** Runs the timers due by `ms` from now, even if the wall clock says otherwise. */
  fire(ms: number) {
    const due = this.timers.filter((x) => x.at <= this.t + ms);
    this.timers = this.timers.filter((x) => x.at > this.t + ms);
    due.forEach((d) => d.fn());
  }
}

function transport(answers: Array<Result | 'throw'>): Transport & { sent: string[][] } {
  const sent: string[][] = [];
  return {
    sent,
    send(body: string) {
      const answer = answers.shift() || { ok: true };
      if (answer === 'throw') throw new Error('a broken fetch polyfill');
      sent.push(JSON.parse(body).events.map((e: { eventId: string }) => e.eventId));
      return Promise.resolve(answer);
    },
    beacon: () => true,
  };
}

describe('queue under bad conditions', () => {
  it('keeps only events from whatever storage holds', () => {
    const kept: Record<string, number> = { '{"eventId":"x"}': 1, '"text"': 0, '[1,null,{"eventId":2},{"eventId":"ok"}]': 1, '{not json': 0 };
    for (const [junk, size] of Object.entries(kept)) {
      const kv = memoryKV();
      kv.set(QUEUE_KEY, junk);
      expect(new Queue(kv, transport([]), new Clock()).size, junk).toBe(size);
    }
  });

  it('is not stuck after a fetch that throws at once', async () => {
    const t = transport(['throw']);
    const q = new Queue(memoryKV(), t, new Clock());
    expect(() => q.push({ eventId: 'a' }, true)).toThrow();
    expect(q.size).toBe(1);
    await q.flush();
    expect(t.sent).toEqual([['a']]);
    expect(q.size).toBe(0);
  });

  it('tries again when a backoff timer fires before the wall clock says it may', async () => {
    const t = transport([{ ok: false, retry: true, afterMs: 5000 }]);
    const clock = new Clock();
    const q = new Queue(memoryKV(), t, clock);
    q.push({ eventId: 'a' }, true);
    await tick();
    expect(t.sent).toHaveLength(1);
    clock.fire(5000); // fires while now() is still before the end of the backoff
    await tick();
    expect(t.sent).toHaveLength(1);
    clock.t += 5000;
    clock.fire(0);
    await tick();
    expect(t.sent).toEqual([['a'], ['a']]);
    expect(q.size).toBe(0);
  });
});

describe('batches the servers take', () => {
  it('stay under 64 KB, so a long backlog is never refused whole (413)', async () => {
    const t = transport([]);
    const kv = memoryKV();
    const big = (i: number) => ({ eventId: `e${i}`, url: 'https://acme.example/?' + 'x'.repeat(2000), referrer: 'https://r.example/?' + 'y'.repeat(2000) });
    kv.set(QUEUE_KEY, JSON.stringify(Array.from({ length: 40 }, (_, i) => big(i))));
    const q = new Queue(kv, t, new Clock());
    await q.flush();
    await q.flush();
    await q.flush();
    expect(t.sent.flat()).toEqual(Array.from({ length: 40 }, (_, i) => `e${i}`));
    expect(t.sent.length).toBe(3);
    for (const batch of t.sent) expect(JSON.stringify({ v: 1, events: batch.map((id) => big(+id.slice(1))) }).length).toBeLessThan(64 * 1024);
  });

  it('hand the browser a beacon under 64 KB, and keep the rest for the next page', () => {
    const beacons: number[] = [];
    const kv = memoryKV();
    kv.set(QUEUE_KEY, JSON.stringify(Array.from({ length: 40 }, (_, i) => ({ eventId: `e${i}`, url: 'x'.repeat(4000) }))));
    const q = new Queue(kv, { send: () => new Promise<Result>(() => {}), beacon: (b) => beacons.push(b.length) > 0 }, new Clock());
    q.flushOnExit();
    expect(beacons[0]).toBeLessThan(64 * 1024);
    expect(q.size).toBe(40 - 14);
  });
});

describe('sessions from junk', () => {
  it('start a new session when the stored one is not an id', () => {
    for (const junk of [' 5', '<x> 5', '{"id":"s","last":5}', 'abc']) {
      const kv = memoryKV();
      kv.set('_oie_session', junk);
      expect(touchSession(kv, 10, () => 'fresh'), junk).toBe('fresh');
    }
  });
});

describe('hashes and links', () => {
  it('hashes with SHA-256 in hex', async () => {
    expect(await sha256Hex('jane@acme.example')).toBe(await reference('jane@acme.example'));
  });

  it('drop a first parameter that is not a campaign tag, and keep paths with &', () => {
    expect(safeHref('https://acme.example/p?email=x&utm_a=1')).toBe('https://acme.example/p?utm_a=1');
    expect(safeHref('https://acme.example/a&b?utm_a=1&t=2')).toBe('https://acme.example/a&b?utm_a=1');
    expect(safeHref('http://acme.example/')).toBe('http://acme.example/');
  });
});

describe('text the contract counts', () => {
  it('cuts by characters, never through an emoji', () => {
    const text = 'x'.repeat(99) + '🚀 launch';
    // 100 UTF-16 units would end in half the rocket: a lone surrogate, which the servers read as U+FFFD.
    expect(text.slice(0, 100)).toMatch(/[\ud800-\udbff]$/);
    const cut = trimText(text, 100);
    expect(cut).toBe('x'.repeat(99) + '🚀');
    expect([...cut].length).toBe(100);
    expect(trimText('  a \n\t b  ', 100)).toBe('a b');
  });
});

async function reference(text: string): Promise<string> {
  const { createHash } = await import('node:crypto');
  return createHash('sha256').update(text).digest('hex');
}
