import { describe, expect, it } from 'vitest';
import { COOKIE, VISITOR_KEY, cookieFor, forget, idFromUrl, readCookie, resolveVisitor, withoutId } from '../../src/identity';
import { memoryKV } from '../../src/store';

const doc = () => ({ cookie: '' });

describe('identity', () => {
  it('reads a valid ?i= and ignores junk', () => {
    expect(idFromUrl('https://acme.example/?i=ab3f9&utm=x')).toBe('ab3f9');
    expect(idFromUrl('https://acme.example/?i=<script>')).toBeNull();
    expect(idFromUrl('https://acme.example/?i=')).toBeNull();
    expect(idFromUrl('https://acme.example/')).toBeNull();
  });

  it('strips only the i parameter from the address', () => {
    expect(withoutId('https://acme.example/pricing?i=ab3f9&utm=x#plans')).toBe('/pricing?utm=x#plans');
    expect(withoutId('https://acme.example/pricing?i=ab3f9')).toBe('/pricing');
    expect(withoutId('https://acme.example/pricing?utm=x')).toBeNull();
  });

  it('remembers the visitor in localStorage and a first-party cookie', () => {
    const kv = memoryKV();
    const d = doc();
    expect(resolveVisitor(kv, d, 'https://acme.example/?i=ab3f9', 1000)).toBe('ab3f9');
    expect(JSON.parse(kv.get(VISITOR_KEY)!)).toEqual({ visitorId: 'ab3f9', timestamp: 1000 });
    expect(d.cookie).toBe(`${COOKIE}=ab3f9; Max-Age=7776000; Path=/; SameSite=Lax; Secure`);
    expect(resolveVisitor(kv, d, 'https://acme.example/next', 2000)).toBe('ab3f9');
  });

  it('falls back to the cookie, and is not Secure on http', () => {
    const d = { cookie: 'a=1; _oie_vid=zz9; b=2' };
    expect(resolveVisitor(memoryKV(), d, 'http://acme.example/', 1)).toBe('zz9');
    expect(readCookie({ cookie: '_oie_vid=bad value' })).toBeNull();
    expect(cookieFor('x', false)).not.toContain('Secure');
  });

  it('a new link wins over what was stored', () => {
    const kv = memoryKV();
    resolveVisitor(kv, doc(), 'https://a.example/?i=first', 1);
    expect(resolveVisitor(kv, doc(), 'https://a.example/?i=second', 2)).toBe('second');
  });

  it('forgets on request', () => {
    const kv = memoryKV();
    const d = doc();
    resolveVisitor(kv, d, 'https://a.example/?i=ab3f9', 1);
    forget(kv, d);
    expect(kv.get(VISITOR_KEY)).toBeNull();
    expect(d.cookie).toContain('Max-Age=0');
    expect(resolveVisitor(kv, { cookie: '' }, 'https://a.example/', 2)).toBeNull();
  });
});

describe('page classes from the script tag', async () => {
  const { classOf, pageClasses } = await import('../../src/trackers');
  const tag = (attrs: Record<string, string>) => ({ getAttribute: (n: string) => attrs[n] ?? null }) as unknown as Element;
  it('matches path globs, first class first', () => {
    const classes = pageClasses(tag({ 'data-pricing': '/tarifs*, /prix', 'data-product': '/produit/*', 'data-case-study': '/clients/*' }));
    expect(classOf(classes, '/tarifs')).toBe('pricing');
    expect(classOf(classes, '/tarifs/entreprise')).toBe('pricing');
    expect(classOf(classes, '/prix')).toBe('pricing');
    expect(classOf(classes, '/prix/x')).toBeUndefined();
    expect(classOf(classes, '/produit/tour')).toBe('product');
    expect(classOf(classes, '/clients/acme')).toBe('case_study');
    expect(classOf(classes, '/blog')).toBeUndefined();
    expect(pageClasses(null)).toEqual([]);
  });
});
