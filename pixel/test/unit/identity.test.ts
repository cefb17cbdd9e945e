import { describe, expect, it } from 'vitest';
import { COOKIE, VISITOR_KEY, cookieFor, forget, readCookie, resolveVisitor, splitId } from '../../src/identity';
import { safeHref } from '../../src/trackers';
import { memoryKV } from '../../src/store';

const doc = () => ({ cookie: '' });

describe('identity', () => {
  it('takes a valid ?i= out of the address, and junk too', () => {
    expect(splitId('https://acme.example/?i=ab3f9&utm=x')).toEqual(['ab3f9', '/?utm=x']);
    expect(splitId('https://acme.example/pricing?i=ab3f9&utm=x#plans')).toEqual(['ab3f9', '/pricing?utm=x#plans']);
    expect(splitId('https://acme.example/pricing?i=ab3f9')).toEqual(['ab3f9', '/pricing']);
    expect(splitId('https://acme.example/?i=<script>')).toEqual([null, '/']);
    expect(splitId('https://acme.example/?i=')).toEqual([null, '/']);
    expect(splitId('https://acme.example/pricing?utm=x')).toEqual([null, null]);
  });

  it('remembers the visitor in localStorage and a first-party cookie', () => {
    const kv = memoryKV();
    const d = doc();
    expect(resolveVisitor(kv, d, 'ab3f9', true, 1000)).toBe('ab3f9');
    expect(JSON.parse(kv.get(VISITOR_KEY)!)).toEqual({ visitorId: 'ab3f9', timestamp: 1000 });
    expect(d.cookie).toBe(`${COOKIE}=ab3f9; Max-Age=7776000; Path=/; SameSite=Lax; Secure`);
    expect(resolveVisitor(kv, d, null, true, 2000)).toBe('ab3f9');
  });

  it('falls back to the cookie, and is not Secure on http', () => {
    const d = { cookie: 'a=1; _oie_vid=zz9; b=2' };
    expect(resolveVisitor(memoryKV(), d, null, false, 1)).toBe('zz9');
    expect(readCookie({ cookie: '_oie_vid=bad value' })).toBeNull();
    expect(cookieFor('x', false)).not.toContain('Secure');
  });

  it('a new link wins over what was stored', () => {
    const kv = memoryKV();
    resolveVisitor(kv, doc(), 'first', true, 1);
    expect(resolveVisitor(kv, doc(), 'second', true, 2)).toBe('second');
  });

  it('forgets on request', () => {
    const kv = memoryKV();
    const d = doc();
    resolveVisitor(kv, d, 'ab3f9', true, 1);
    forget(kv, d);
    expect(kv.get(VISITOR_KEY)).toBeNull();
    expect(d.cookie).toContain('Max-Age=0');
    expect(resolveVisitor(kv, { cookie: '' }, null, true, 2)).toBeNull();
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

describe('clicked links', () => {
  it('keep http(s) with campaign tags only: no mailto, tel, tokens or fragments', () => {
    expect(safeHref('https://acme.example/pricing?utm_source=mail&token=s3cret&utm_campaign=q4#faq')).toBe(
      'https://acme.example/pricing?utm_source=mail&utm_campaign=q4',
    );
    expect(safeHref('https://acme.example/signup?email=jane%40acme.example')).toBe('https://acme.example/signup');
    expect(safeHref('mailto:jane@acme.example?subject=hi')).toBeNull();
    expect(safeHref('tel:+15551234567')).toBeNull();
    expect(safeHref('javascript:alert(1)')).toBeNull();
    expect(safeHref('not a url')).toBeNull();
  });
});
