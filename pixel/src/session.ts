// A session id that renews after 30 minutes without activity, stored as "id lastActivityMs".

import { isId, KV, randomId } from './store';

export const SESSION_KEY = '_oie_session';
export const IDLE_MS = 30 * 60 * 1000;

/** The current session id, renewed when idle too long; records activity at `now`. */
export function touchSession(kv: KV, now: number, makeId: () => string = randomId): string {
  const [stored, last] = (kv.get(SESSION_KEY) || '').split(' ');
  const id = isId(stored) && now - +last <= IDLE_MS ? stored : makeId();
  kv.set(SESSION_KEY, id + ' ' + now);
  return id;
}
