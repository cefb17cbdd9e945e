// Who the visitor is: `?i=SHORTID` from the e-mail link, taken out of the address bar as soon
// as the pixel runs (so neither a copied link nor another script on the page sees it), kept in
// memory, and remembered in localStorage and a first-party cookie once there is consent.

import { isId, KV, readJSON } from './store';

export const VISITOR_KEY = '_oie_visitor';
export const COOKIE = '_oie_vid';

export interface Doc {
  cookie: string;
}

export interface StoredVisitor {
  visitorId: string;
  timestamp: number;
}

/** The `i` parameter of `href` if it is a valid id, and the address without any `i` (path,
 * query, fragment), or null when there was none to take out. */
export function splitId(href: string): [string | null, string | null] {
  const url = new URL(href);
  const i = url.searchParams.get('i');
  if (i === null) return [null, null];
  url.searchParams.delete('i');
  return [isId(i) ? i : null, url.pathname + url.search + url.hash];
}

export function readCookie(doc: Doc): string | null {
  const v = doc.cookie.match(/(^|; *)_oie_vid=([^;]*)/);
  return v && isId(v[2]) ? v[2] : null;
}

/** The cookie line for `id`, kept 90 days (or `maxAge` seconds). */
export const cookieFor = (id: string, secure: boolean, maxAge = 7776000): string =>
  `${COOKIE}=${id}; Max-Age=${maxAge}; Path=/; SameSite=Lax${secure ? '; Secure' : ''}`;

/** Remembers `fromUrl` (the id the page was opened with) or recalls the stored one. */
export function resolveVisitor(kv: KV, doc: Doc, fromUrl: string | null, secure: boolean, now: number): string | null {
  if (fromUrl) {
    remember(kv, doc, fromUrl, secure, now);
    return fromUrl;
  }
  const stored = readJSON<StoredVisitor>(kv, VISITOR_KEY);
  return stored && isId(stored.visitorId) ? stored.visitorId : readCookie(doc);
}

export function remember(kv: KV, doc: Doc, id: string, secure: boolean, now: number): void {
  kv.set(VISITOR_KEY, JSON.stringify({ visitorId: id, timestamp: now } satisfies StoredVisitor));
  doc.cookie = cookieFor(id, secure);
}

/** Forgets the visitor (consent withdrawn, or Global Privacy Control). */
export function forget(kv: KV, doc: Doc): void {
  kv.del(VISITOR_KEY);
  doc.cookie = cookieFor('', false, 0);
}
