// The pixel in real Chromium (Debian's, driven by playwright-core) against a local site and a
// collector that validates every request against the ingest contract.

import { createHash } from 'node:crypto';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Browser, BrowserContext, chromium, Page } from 'playwright-core';
import { page as html, Site } from './server';

const CHROMIUM = process.env.OIE_CHROMIUM || '/usr/bin/chromium';
let browser: Browser;
let site: Site;
let context: BrowserContext;

beforeAll(async () => {
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
});
afterAll(async () => browser?.close());
beforeEach(async () => {
  site = new Site();
  await site.start();
  context = await browser.newContext();
});
afterEach(async () => {
  await context.close();
  expect(site.invalid, 'every request matches the contract').toEqual([]);
  await site.stop();
});

async function until(what: string, done: () => boolean, ms = 15000): Promise<void> {
  const start = Date.now();
  while (!done()) {
    if (Date.now() - start > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const ofType = (t: string) => site.events().filter((e) => e.type === t);

async function open(path = '/pricing?i=ab3f9&utm_source=mail'): Promise<Page> {
  const p = await context.newPage();
  await p.goto(site.base + path);
  await p.waitForFunction(() => (window as any).oie && (window as any).oie.loaded);
  return p;
}

/** Delivers what is queued now (the pixel batches by 5 or 10 s). */
async function hide(p: Page): Promise<void> {
  await p.evaluate(() => {
    Object.defineProperty(document, 'visibilityState', { value: 'hidden', configurable: true });
    document.dispatchEvent(new Event('visibilitychange'));
  });
}

describe('pixel in Chromium', () => {
  it('takes the id from ?i=, stores it, and strips it from the address', async () => {
    const p = await open();
    expect(new URL(p.url()).search).toBe('?utm_source=mail');
    const stored = await p.evaluate(() => JSON.parse(localStorage.getItem('_oie_visitor') || 'null'));
    expect(stored.visitorId).toBe('ab3f9');
    const cookies = await context.cookies();
    const vid = cookies.find((c) => c.name === '_oie_vid')!;
    expect(vid.value).toBe('ab3f9');
    expect(vid.sameSite).toBe('Lax');
    expect(vid.expires - Date.now() / 1000).toBeGreaterThan(89 * 86400);
    await until('the pageview', () => ofType('pageview').length > 0);
    const pv = ofType('pageview')[0];
    expect(pv.visitorId).toBe('ab3f9');
    expect(pv.url).not.toContain('i=ab3f9');
    // The next page knows the visitor without the parameter.
    const next = await open('/demo');
    await until('second pageview', () => ofType('pageview').length > 1);
    expect(ofType('pageview')[1].visitorId).toBe('ab3f9');
    expect(ofType('pageview')[1].sessionId).toBe(pv.sessionId);
    await next.close();
  });

  it('records scrolls, clicks, forms, video, tab switches and navigation as the contract says', async () => {
    const p = await open();
    await p.evaluate(() => window.scrollTo(0, document.documentElement.scrollHeight * 0.5));
    await p.waitForTimeout(400);
    await p.evaluate(() => window.scrollTo(0, document.documentElement.scrollHeight));
    await p.waitForTimeout(400);
    await p.evaluate(() => window.scrollTo(0, 0));
    await p.waitForTimeout(400);
    await p.click('#demo-link');
    await p.click('#cta');
    await p.fill('input[name=email]', '  Jane@Acme.example ');
    await p.fill('input[name=company]', 'Acme');
    await p.evaluate(() => document.getElementById('demo-form')!.addEventListener('submit', (e) => e.preventDefault()));
    await p.click('button[type=submit]');
    await p.evaluate(() => {
      const v = document.getElementById('tour') as HTMLVideoElement;
      Object.defineProperty(v, 'duration', { value: 100, configurable: true });
      let t = 0;
      Object.defineProperty(v, 'currentTime', { get: () => t, configurable: true });
      v.dispatchEvent(new Event('play'));
      for (const s of [10, 30, 60, 91]) {
        t = s;
        v.dispatchEvent(new Event('timeupdate'));
      }
    });
    await hide(p);
    await p.evaluate(() => history.pushState({}, '', '/case-studies/acme'));
    await hide(p);
    await until('all events', () => ofType('pageview').length >= 2 && ofType('video_play').length >= 5, 20000);

    const depths = ofType('scroll_depth').filter((e) => e.path === '/pricing').map((e) => e.data.depth);
    expect(depths.sort((a, b) => a - b)).toEqual([25, 50, 75, 90, 100]);
    const clicks = ofType('click');
    expect(clicks[0].data).toEqual({ tag: 'a', id: 'demo-link', classes: 'btn primary', text: 'Book a demo', href: `${site.base}/pricing?utm_source=mail` }); // campaign tags kept, fragment dropped
    expect(clicks[1].data.tag).toBe('button');
    expect(clicks[1].data.text.length).toBe(100);
    expect(ofType('form_start').map((e) => e.data)).toEqual([{ formId: 'demo-form' }]);
    const submit = ofType('form_submit')[0].data;
    const hash = createHash('sha256').update('jane@acme.example').digest('hex');
    expect(submit).toEqual({ formId: 'demo-form', fields: ['email', 'company'], emailHashes: [hash] });
    expect(site.received.some((r) => /jane@acme/i.test(r.raw)), 'the e-mail never leaves the browser').toBe(false);
    expect(site.received.some((r) => r.raw.includes('"Acme"') && r.raw.includes('company":"Acme')), 'no input values').toBe(false);
    expect(ofType('video_play').map((e) => e.data.percent)).toEqual([0, 25, 50, 75, 90]);
    expect(ofType('focus_lost').length).toBeGreaterThanOrEqual(1);
    const exit = ofType('page_exit').find((e) => e.path === '/pricing')!;
    expect(exit.data.maxScrollDepth).toBe(100);
    expect(exit.data.activeMs).toBeGreaterThan(0);
    const spa = ofType('pageview').find((e) => e.path === '/case-studies/acme')!;
    expect(spa.data).toEqual({ spa: true });
    expect(new Set(site.events().map((e) => e.eventId)).size).toBe(site.events().length);
    expect(new Set(site.events().map((e) => e.sessionId)).size).toBe(1);
  });

  it('delivers the tail of the queue when the page closes', async () => {
    const p = await open();
    await until('pageview', () => ofType('pageview').length === 1);
    await p.click('#cta');
    await p.click('#cta');
    await p.close({ runBeforeUnload: true });
    await until('the tail', () => ofType('click').length === 2 && ofType('page_exit').length === 1);
  });

  it('sends a valid page_exit when the wall clock is set back while the page is open', async () => {
    // The clock the pixel reads, an hour back once the page has loaded (NTP, a user, a VM resume).
    await context.addInitScript(() => {
      const real = Date.now;
      let back = 0;
      Date.now = () => real() - back;
      (window as any).setClockBack = (ms: number) => (back = ms);
    });
    const p = await open();
    await until('pageview', () => ofType('pageview').length === 1);
    await p.evaluate(() => (window as any).setClockBack(3_600_000));
    await p.click('#cta');
    await p.close({ runBeforeUnload: true });
    // A negative activeMs would make the collector refuse the whole batch (checked after each test).
    await until('the tail', () => ofType('click').length === 1 && ofType('page_exit').length === 1);
    expect(ofType('page_exit')[0].data.activeMs).toBeGreaterThanOrEqual(0);
  });

  it('sends a valid page_exit from a frame of no height', async () => {
    const p = await open();
    await until('pageview', () => ofType('pageview').length === 1);
    // An empty frame of no height, and a page script's synthetic scroll (lazy loaders send them):
    // the depth is 0 / 0.
    await p.evaluate(() => {
      Object.defineProperty(window, 'innerHeight', { value: 0 });
      Object.defineProperty(document.scrollingElement!, 'scrollHeight', { value: 0 });
      dispatchEvent(new Event('scroll'));
    });
    await p.waitForTimeout(400);
    await p.close({ runBeforeUnload: true });
    // A NaN depth would be null in JSON, and the collector would refuse the batch.
    await until('page_exit', () => ofType('page_exit').length === 1);
    expect(ofType('page_exit')[0].data.maxScrollDepth).toBe(0);
  });

  it('cuts long titles and texts between characters, never through an emoji', async () => {
    // Cut at 512 and 100 UTF-16 units, both would end in half a rocket (written as an escape: the
    // test page declares no charset).
    site.html = html({
      extraHead: `<script>
        document.title = 'T'.repeat(511) + '\\u{1F680} pricing';
        addEventListener('DOMContentLoaded', () => {
          const b = document.createElement('button');
          b.id = 'emoji';
          b.textContent = 'x'.repeat(99) + '\\u{1F680} launch';
          document.body.prepend(b);
        });
      </script>`,
    });
    const p = await open();
    await p.click('#emoji');
    await hide(p);
    // Half a surrogate pair would make the collector refuse the batch (see server.ts).
    await until('the click', () => ofType('click').length === 1);
    const click = ofType('click')[0];
    expect(click.data.text).toBe('x'.repeat(99) + '🚀');
    expect(click.title).toBe('T'.repeat(511) + '🚀');
  });

  it('keeps events across a reload while the collector is down, and delivers them later', async () => {
    site.down = true;
    const p = await open();
    await p.click('#cta');
    await until('a failed attempt', () => site.attempts > 0);
    await p.reload();
    await p.waitForFunction(() => (window as any).oie && (window as any).oie.loaded);
    const queued = await p.evaluate(() => JSON.parse(localStorage.getItem('_oie_queue') || '[]').length);
    expect(queued).toBeGreaterThanOrEqual(3);
    site.down = false;
    await until('the stored events', () => ofType('pageview').length >= 2 && ofType('click').length >= 1, 30000);
  });

  it('sends nothing with Global Privacy Control, and forgets the visitor', async () => {
    await context.addInitScript(() => Object.defineProperty(navigator, 'globalPrivacyControl', { value: true }));
    const p = await open();
    await p.click('#cta');
    await hide(p);
    await p.waitForTimeout(1000);
    expect(site.attempts).toBe(0);
    expect(await p.evaluate(() => localStorage.getItem('_oie_visitor'))).toBeNull();
  });

  it('stops and forgets when consent is withdrawn, and waits for it when required', async () => {
    const p = await open();
    await until('pageview', () => ofType('pageview').length === 1);
    await p.evaluate(() => (window as any).oie('consent', false));
    const before = site.events().length;
    await p.click('#cta');
    await hide(p);
    await p.waitForTimeout(800);
    expect(site.events().length).toBe(before);
    expect(await p.evaluate(() => localStorage.getItem('_oie_visitor'))).toBeNull();
    expect((await context.cookies()).find((c) => c.name === '_oie_vid')).toBeUndefined();

    site.html = html({ consent: 'required' });
    const q = await open('/pricing?i=zz9');
    // Without consent the id still leaves the address bar in the pixel's first task, and is
    // kept in memory only.
    expect(new URL(q.url()).search).toBe('');
    expect(await q.evaluate(() => localStorage.getItem('_oie_visitor'))).toBeNull();
    await q.click('#cta');
    await q.waitForTimeout(800);
    expect(site.events().length).toBe(before);
    await q.evaluate(() => (window as any).oie('consent', true));
    await until('events after consent', () => ofType('pageview').some((e) => e.visitorId === 'zz9'));
  });

  it('marks pageviews with the page classes given on the script tag', async () => {
    site.html = html({ attrs: 'data-pricing="/tarifs*" data-product="/produit/*"' });
    const p = await open('/tarifs/entreprise?i=ab3f9');
    await p.evaluate(() => history.pushState({}, '', '/produit/tour'));
    await p.evaluate(() => history.pushState({}, '', '/blog'));
    await hide(p);
    await until('three pageviews', () => ofType('pageview').length === 3);
    expect(ofType('pageview').map((e) => e.data)).toEqual([{ pageClass: 'pricing' }, { spa: true, pageClass: 'product' }, { spa: true }]);
  });

  it('makes no request while the page loads: the pageview waits for the first batch', async () => {
    const p = await open();
    await p.waitForTimeout(1500);
    expect(site.attempts).toBe(0);
    const queued = await p.evaluate(() => JSON.parse(localStorage.getItem('_oie_queue') || '[]').map((e: { type: string }) => e.type));
    expect(queued).toEqual(['pageview']);
    await hide(p);
    await until('the pageview', () => ofType('pageview').length === 1 && ofType('focus_lost').length === 1);
  });

  it('names a form by its attributes even when its fields are called id and name', async () => {
    const p = await open();
    await p.evaluate(() => {
      const form = document.createElement('form');
      form.id = 'lead';
      form.innerHTML = '<input name="id"><input name="name" value="Jane"><input name="work_email" value=" Jane@Acme.example "><input type="checkbox" name="email_opt_in" checked><button>Go</button>';
      form.addEventListener('submit', (e) => e.preventDefault());
      document.body.prepend(form);
    });
    await p.focus('#lead input[name="id"]');
    await p.click('#lead button');
    await until('the submission', () => ofType('form_submit').length === 1);
    expect(ofType('form_start').map((e) => e.data)).toEqual([{ formId: 'lead' }]);
    const hash = createHash('sha256').update('jane@acme.example').digest('hex');
    // The checkbox's "on" is not an address: no hash of it.
    expect(ofType('form_submit')[0].data).toEqual({ formId: 'lead', fields: ['id', 'name', 'work_email', 'email_opt_in'], emailHashes: [hash] });
  });

  it('never throws into the host page, even with a broken endpoint and storage', async () => {
    const errors: string[] = [];
    const p = await context.newPage();
    p.on('pageerror', (e) => errors.push(String(e)));
    site.html = html({ extraHead: '<script>Storage.prototype.setItem = function(){ throw new Error("quota") }</script>' });
    site.down = true;
    await p.goto(site.base + '/pricing?i=ab3f9');
    await p.click('#cta');
    await p.evaluate(() => history.pushState({}, '', '/x'));
    await hide(p);
    await p.waitForTimeout(500);
    expect(errors).toEqual([]);
  });
});
