// Who the visitor is: `?i=SHORTID` from the e-mail link, remembered in localStorage and a
// first-party cookie, then removed from the address bar so a copied link carries no identity.

import { KV, readJSON } from './store';

export const VISITOR_KEY = '_oie_visitor';
export const COOKIE = '_oie_vid';
const COOKIE_DAYS = 90;
const ID = /^[A-Za-z0-9_.:-]{1,64}$/;

export interface Doc {
  cookie: string;
}

export interface StoredVisitor {
  visitorId: string;
  timestamp: number;
}

export function isId(value: string | null | undefined): value is string {
  return !!value && ID.test(value);
}

/** The `i` parameter of a URL, if it is a valid id. */
export function idFromUrl(href: string): string | null {
  const i = new URL(href).searchParams.get('i');
  return isId(i) ? i : null;
}

/** The URL without its `i` parameter (or null when it has none). */
export function withoutId(href: string): string | null {
  const url = new URL(href);
  if (!url.searchParams.has('i')) return null;
  url.searchParams.delete('i');
  return url.pathname + (url.search === '?' ? '' : url.search) + url.hash;
}

export function readCookie(doc: Doc): string | null {
  for (const part of doc.cookie.split(';')) {
    const [k, v] = part.trim().split('=');
    if (k === COOKIE && isId(v)) return v;
  }
  return null;
}

export function cookieFor(id: string, secure: boolean, days = COOKIE_DAYS): string {
  return `${COOKIE}=${id}; Max-Age=${days * 86400}; Path=/; SameSite=Lax${secure ? '; Secure' : ''}`;
}

/** Remembers `id` (from the URL) or recalls the stored one. */
export function resolveVisitor(kv: KV, doc: Doc, href: string, now: number): string | null {
  const fromUrl = idFromUrl(href);
  if (fromUrl) {
    remember(kv, doc, fromUrl, href.startsWith('https:'), now);
    return fromUrl;
  }
  const stored = readJSON<StoredVisitor>(kv, VISITOR_KEY);
  if (stored && isId(stored.visitorId)) return stored.visitorId;
  return readCookie(doc);
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
