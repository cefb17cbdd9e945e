// A session id that renews after 30 minutes without activity.

import { KV, randomId, readJSON } from './store';

export const SESSION_KEY = '_oie_session';
export const IDLE_MS = 30 * 60 * 1000;

interface Stored {
  id: string;
  last: number;
}

/** The current session id, renewed when idle too long; records activity at `now`. */
export function touchSession(kv: KV, now: number, makeId: () => string = randomId): string {
  const s = readJSON<Stored>(kv, SESSION_KEY);
  const id = s && typeof s.id === 'string' && now - s.last <= IDLE_MS ? s.id : makeId();
  kv.set(SESSION_KEY, JSON.stringify({ id, last: now } satisfies Stored));
  return id;
}
