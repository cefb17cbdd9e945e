// What the pixel watches: pages (also SPA navigation), scroll milestones, clicks, forms,
// videos, tab switches and leaving.

import { safe } from './guard';
import { normalizeEmail, sha256Hex } from './hash';

/** Where an event happened, when it is not the current address (leaving a page). */
export interface At {
  url: string;
  path: string;
}

export type Emit = (type: string, data?: Record<string, unknown>, at?: At) => void;

/** Addresses are cut to the contract's 2048 characters. */
export const cut = (s: string): string => s.slice(0, 2048);

/** Where the browser is now. */
export const here = (): At => ({ url: cut(location.href), path: cut(location.pathname) });

/** Scroll and video milestones (%). */
const MILESTONES = [25, 50, 75, 90, 100];

/** Per-page state, reset on SPA navigation. */
export interface Page {
  scrolled: Set<number>;
  maxDepth: number;
  activeMs: number;
  visibleSince: number | null;
  at: At;
}

/** A page entered at `now`, counting active time from then if it is visible. */
export function newPage(now: number): Page {
  const visible = document.visibilityState === 'visible';
  return { scrolled: new Set(), maxDepth: 0, activeMs: 0, visibleSince: visible ? now : null, at: here() };
}

/** Milliseconds the page has been visible, up to `now`. */
function activeMs(page: Page, now: number): number {
  return page.activeMs + (page.visibleSince === null ? 0 : now - page.visibleSince);
}

/** Scroll milestones newly reached at `percent`. */
export function newMilestones(page: Page, percent: number): number[] {
  page.maxDepth = Math.max(page.maxDepth, Math.min(100, Math.round(percent)));
  const reached = MILESTONES.filter((m) => percent >= m && !page.scrolled.has(m));
  reached.forEach((m) => page.scrolled.add(m));
  return reached;
}

/** `data-pricing="/tarifs*,/prix"` etc.: path globs per page class, from the script tag. */
export type PageClasses = [string, RegExp][];

export function pageClasses(script: Element | null): PageClasses {
  const out: PageClasses = [];
  for (const cls of ['pricing', 'case_study', 'product']) {
    const globs = (script?.getAttribute('data-' + cls.replace('_', '-')) || '').split(',').map((g) => g.trim()).filter(Boolean);
    for (const g of globs) out.push([cls, new RegExp('^' + g.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*') + '$')]);
  }
  return out;
}

/** The class the site gave this path, if any (first match wins). */
export function classOf(classes: PageClasses, path: string): string | undefined {
  const hit = classes.find(([, re]) => re.test(path));
  return hit && hit[0];
}

/** A clicked link as it may be recorded: http(s) only (no `mailto:` or `tel:` addresses), with
 * its campaign tags (`utm_*`) but no other query parameter (tokens, `?email=`) and no fragment;
 * `null` for anything else. */
export function safeHref(href: string): string | null {
  // An anchor's `href` is already absolute and normalised by the browser.
  const [base, query = ''] = href.split('#')[0].split('?');
  const kept = query.split('&').filter((p) => /^utm_/.test(p)).join('&');
  return /^https?:\/\//i.test(base) ? cut(base + (kept ? '?' + kept : '')) : null;
}

export function trimText(text: string, max: number): string {
  const t = text.replace(/\s+/g, ' ').trim();
  return t.length > max ? t.slice(0, max) : t;
}

function formId(form: HTMLFormElement): string {
  const all = Array.prototype.indexOf.call(document.forms, form);
  return trimText(form.id || form.getAttribute('name') || `form-${all}`, 128);
}

function isEmailField(el: Element): el is HTMLInputElement {
  return el instanceof HTMLInputElement && (el.type === 'email' || /e-?mail/i.test(el.name));
}

/** The data of a pageview of the current page. */
export function pageviewData(classes: PageClasses, spa: boolean): Record<string, unknown> | undefined {
  const data: Record<string, unknown> = {};
  if (spa) data.spa = true;
  const cls = classOf(classes, location.pathname);
  if (cls) data.pageClass = cls;
  return spa || cls ? data : undefined;
}

/** Watches the page; `hidden` runs each time the tab is hidden (after `focus_lost`). */
export function watch(emit: Emit, now: () => number, classes: PageClasses, hidden: () => void): { exit: () => void } {
  let page = newPage(now());
  let path = location.pathname + location.search;
  const started = new WeakSet<HTMLFormElement>();
  const videos = new WeakMap<HTMLMediaElement, Set<number>>();
  let scrollTimer: ReturnType<typeof setTimeout> | null = null;
  let exited = false;

  const exit = () => {
    if (exited) return;
    exited = true;
    emit('page_exit', { activeMs: Math.round(activeMs(page, now())), maxScrollDepth: page.maxDepth }, page.at);
  };

  const checkScroll = safe(() => {
    scrollTimer = null;
    const el = document.documentElement;
    const height = Math.max(el.scrollHeight, document.body ? document.body.scrollHeight : 0);
    const percent = height <= window.innerHeight ? 100 : ((window.scrollY + window.innerHeight) / height) * 100;
    newMilestones(page, percent).forEach((depth) => emit('scroll_depth', { depth }));
  });

  const navigated = safe(() => {
    const next = location.pathname + location.search;
    if (next === path) return;
    exit();
    path = next;
    page = newPage(now());
    exited = false;
    emit('pageview', pageviewData(classes, true));
  });

  for (const method of ['pushState', 'replaceState'] as const) {
    const original = history[method];
    history[method] = function (this: History, ...args: Parameters<History['pushState']>) {
      const r = original.apply(this, args);
      navigated();
      return r;
    };
  }

  const on = (target: EventTarget, type: string, fn: (e: Event) => unknown, capture = true) =>
    target.addEventListener(type, safe(fn), { capture, passive: true });

  on(window, 'popstate', navigated);
  on(window, 'scroll', () => {
    if (scrollTimer === null) scrollTimer = setTimeout(checkScroll, 200);
  }, false);

  on(document, 'click', (e) => {
    const el = (e.target as Element | null)?.closest?.('a,button');
    if (!el) return;
    const data: Record<string, unknown> = { tag: el.tagName.toLowerCase() };
    if (el.id) data.id = trimText(el.id, 128);
    const classes = trimText(el.getAttribute('class') || '', 256);
    if (classes) data.classes = classes;
    const text = trimText((el as HTMLElement).innerText || el.textContent || '', 100);
    if (text) data.text = text;
    const href = el instanceof HTMLAnchorElement ? safeHref(el.href) : null;
    if (href) data.href = href;
    emit('click', data);
  });

  on(document, 'focusin', (e) => {
    const form = (e.target as HTMLInputElement | null)?.form;
    if (!form || started.has(form)) return;
    started.add(form);
    emit('form_start', { formId: formId(form) });
  });

  on(document, 'submit', (e) => {
    const form = e.target as HTMLFormElement;
    if (!(form instanceof HTMLFormElement)) return;
    const fields: string[] = [];
    const emails: string[] = [];
    for (const el of Array.from(form.elements)) {
      const name = (el as HTMLInputElement).name;
      if (name && fields.length < 50 && fields.indexOf(name) < 0) fields.push(trimText(name, 128));
      if (isEmailField(el) && el.value.trim() && emails.length < 10) emails.push(normalizeEmail(el.value));
    }
    const data: Record<string, unknown> = { formId: formId(form), fields };
    return Promise.all(emails.map(sha256Hex)).then((all) => {
      const hashes = all.filter((h): h is string => !!h);
      if (hashes.length) data.emailHashes = hashes;
      emit('form_submit', data);
    });
  });

  const video = (e: Event) => {
    const v = e.target as HTMLMediaElement;
    if (!(v instanceof HTMLMediaElement)) return;
    const seen = videos.get(v) || new Set<number>();
    videos.set(v, seen);
    const src = cut(v.currentSrc || v.src || '');
    const marks = e.type === 'play' ? [0] : [];
    if (v.duration > 0) {
      const percent = (v.currentTime / v.duration) * 100;
      MILESTONES.forEach((m) => percent >= m && marks.push(m));
    }
    marks.filter((m) => !seen.has(m)).forEach((m) => {
      seen.add(m);
      emit('video_play', { src, percent: m });
    });
  };
  on(document, 'play', video);
  on(document, 'timeupdate', video);

  on(document, 'visibilitychange', () => {
    const t = now();
    if (document.visibilityState === 'hidden') {
      if (page.visibleSince !== null) page.activeMs += t - page.visibleSince;
      page.visibleSince = null;
      emit('focus_lost');
      hidden();
    } else if (page.visibleSince === null) {
      page.visibleSince = t;
    }
  });

  return { exit };
}
