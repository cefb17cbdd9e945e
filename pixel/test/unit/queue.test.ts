import { describe, expect, it } from 'vitest';
import { BATCH, FLUSH_MS, MAX_QUEUED, QUEUE_KEY, Queue, Result, Transport } from '../../src/queue';
import { memoryKV } from '../../src/store';

class FakeClock {
  t = 0;
  timers: { at: number; fn: () => void }[] = [];
  now = () => this.t;
  setTimeout = (fn: () => void, ms: number) => {
    this.timers.push({ at: this.t + ms, fn });
    return this.timers.length;
  };
  async advance(ms: number) {
    this.t += ms;
    const due = this.timers.filter((x) => x.at <= this.t);
    this.timers = this.timers.filter((x) => x.at > this.t);
    for (const d of due) d.fn();
    await new Promise((r) => setTimeout(r, 0));
  }
}

class FakeTransport implements Transport {
  bodies: { v: number; events: { eventId: string }[] }[] = [];
  beacons: string[] = [];
  answers: Result[] = [];
  beaconOk = true;
  async send(body: string): Promise<Result> {
    this.bodies.push(JSON.parse(body));
    return this.answers.shift() || { ok: true };
  }
  beacon(body: string): boolean {
    if (this.beaconOk) this.beacons.push(body);
    return this.beaconOk;
  }
  sent(): string[] {
    return this.bodies.flatMap((b) => b.events.map((e) => e.eventId));
  }
}

const ev = (i: number) => ({ eventId: `e${i}`, type: 'pageview' });
const tick = () => new Promise((r) => setTimeout(r, 0));

describe('queue', () => {
  it('sends a batch of 5 at once', async () => {
    const t = new FakeTransport();
    const q = new Queue(memoryKV(), t, new FakeClock());
    for (let i = 0; i < BATCH - 1; i++) q.push(ev(i));
    await tick();
    expect(t.bodies).toHaveLength(0);
    q.push(ev(4));
    await tick();
    expect(t.bodies).toHaveLength(1);
    expect(t.bodies[0].v).toBe(1);
    expect(t.sent()).toEqual(['e0', 'e1', 'e2', 'e3', 'e4']);
    expect(q.size).toBe(0);
  });

  it('sends an urgent event at once', async () => {
    const t = new FakeTransport();
    const q = new Queue(memoryKV(), t, new FakeClock());
    q.push(ev(1));
    q.push(ev(2), true);
    await tick();
    expect(t.sent()).toEqual(['e1', 'e2']);
  });

  it('sends fewer after 10 seconds', async () => {
    const t = new FakeTransport();
    const clock = new FakeClock();
    const q = new Queue(memoryKV(), t, clock);
    q.push(ev(1));
    await clock.advance(FLUSH_MS - 1);
    expect(t.bodies).toHaveLength(0);
    await clock.advance(1);
    expect(t.sent()).toEqual(['e1']);
  });

  it('keeps unsent events across page loads, at most 100, oldest dropped', async () => {
    const kv = memoryKV();
    const t = new FakeTransport();
    t.answers = Array(200).fill({ ok: false, retry: true });
    const q = new Queue(kv, t, new FakeClock());
    for (let i = 0; i < MAX_QUEUED + 20; i++) q.push(ev(i));
    expect(q.size).toBe(MAX_QUEUED);
    const again = new Queue(kv, new FakeTransport(), new FakeClock());
    expect(again.size).toBe(MAX_QUEUED);
    expect(JSON.parse(kv.get(QUEUE_KEY)!)[0].eventId).toBe('e20');
  });

  it('backs off on network errors, 5xx and 429 (honouring Retry-After), then delivers', async () => {
    const t = new FakeTransport();
    const clock = new FakeClock();
    t.answers = [{ ok: false, retry: true }, { ok: false, retry: true, afterMs: 7000 }];
    const q = new Queue(memoryKV(), t, clock);
    q.push(ev(1));
    await q.flush();
    expect(t.bodies).toHaveLength(1);
    await clock.advance(999);
    expect(t.bodies).toHaveLength(1);
    await clock.advance(1);
    expect(t.bodies).toHaveLength(2);
    await clock.advance(6999);
    expect(t.bodies).toHaveLength(2);
    await clock.advance(1);
    expect(t.bodies).toHaveLength(3);
    expect(q.size).toBe(0);
  });

  it('drops what the server refuses (400, 413)', async () => {
    const t = new FakeTransport();
    t.answers = [{ ok: false, retry: false }];
    const q = new Queue(memoryKV(), t, new FakeClock());
    q.push(ev(1));
    await q.flush();
    expect(q.size).toBe(0);
  });

  it('hands the tail to sendBeacon when the page goes away', async () => {
    const t = new FakeTransport();
    const q = new Queue(memoryKV(), t, new FakeClock());
    q.push(ev(1));
    q.push(ev(2));
    q.flushOnExit();
    expect(q.size).toBe(0);
    expect(JSON.parse(t.beacons[0]).events.map((e: { eventId: string }) => e.eventId)).toEqual(['e1', 'e2']);
    t.beaconOk = false;
    q.push(ev(3));
    q.flushOnExit();
    expect(q.size).toBe(1);
  });

  it('does not beacon what a fetch is already carrying', async () => {
    const t = new FakeTransport();
    let release!: (r: Result) => void;
    t.send = async (b: string) => {
      t.bodies.push(JSON.parse(b));
      return new Promise<Result>((r) => (release = r));
    };
    const q = new Queue(memoryKV(), t, new FakeClock());
    for (let i = 0; i < BATCH; i++) q.push(ev(i));
    q.push(ev(9));
    q.flushOnExit();
    expect(t.beacons.map((b) => JSON.parse(b).events.map((e: { eventId: string }) => e.eventId))).toEqual([['e9']]);
    release({ ok: true });
    await tick();
    expect(q.size).toBe(0);
  });

  it('keeps the tail stored when the collector was failing', async () => {
    const kv = memoryKV();
    const t = new FakeTransport();
    t.answers = [{ ok: false, retry: true }];
    const q = new Queue(kv, t, new FakeClock());
    q.push(ev(1));
    await q.flush();
    q.flushOnExit();
    expect(t.beacons).toHaveLength(1);
    expect(new Queue(kv, t, new FakeClock()).size).toBe(1);
  });

  it('forgets everything when consent is withdrawn', () => {
    const kv = memoryKV();
    const q = new Queue(kv, new FakeTransport(), new FakeClock());
    q.push(ev(1));
    q.clear();
    expect(q.size).toBe(0);
    expect(kv.get(QUEUE_KEY)).toBeNull();
  });
});
