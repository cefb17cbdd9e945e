import { describe, expect, it } from 'vitest';
import { IDLE_MS, touchSession } from '../../src/session';
import { memoryKV } from '../../src/store';

describe('sessions', () => {
  it('keeps the id while active and renews it after 30 idle minutes', () => {
    const kv = memoryKV();
    let n = 0;
    const ids = () => `s${++n}`;
    expect(touchSession(kv, 0, ids)).toBe('s1');
    expect(touchSession(kv, IDLE_MS, ids)).toBe('s1');
    // Activity moved the clock: 30 minutes after the last event still counts.
    expect(touchSession(kv, 2 * IDLE_MS, ids)).toBe('s1');
    expect(touchSession(kv, 3 * IDLE_MS + 1, ids)).toBe('s2');
  });

  it('survives junk in storage', () => {
    const kv = memoryKV();
    kv.set('_oie_session', '{not json');
    expect(touchSession(kv, 5, () => 'fresh')).toBe('fresh');
  });
});
