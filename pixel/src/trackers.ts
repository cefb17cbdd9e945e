// What the pixel watches: pages (also SPA navigation), scroll milestones, clicks, forms,
// videos, tab switches and leaving.

import { safe } from './guard';
import { sha256Hex } from './hash';
import { now } from './store';

/** Where an event happened, when it is not the current address (leaving a page). */
export interface At {
  url: string;
  path: string;
}

type Data = Record<string, unknown>;
export type Emit = (type: string, data?: Data, at?: At) => void;

/** Addresses are cut to the contract's 2048 characters. */
export const cut = (s: string): string => s.slice(0, 2048);

/** Where the browser is now. */
export const here = (): At => ({ url: cut(location.href), path: cut(location.pathname) });

/** An empty field is left out (JSON drops undefined ones). */
export const opt = <T>(value: T): T | undefined => value || undefined;

/** Scroll and video milestones (%). */
const MILESTONES = [25, 50, 75, 90, 100];
const newMarks = (from: number, to: number) => MILESTONES.filter((m) => from < m && m <= to);

/** `data-pricing="/tarifs*,/prix"` etc.: path globs per page class, from the script tag. */
export type PageClasses = [string, RegExp][];

export const pageClasses = (script: Element | null): PageClasses =>
  ['pricing', 'case_study', 'product'].flatMap((cls) =>
    (script?.getAttribute('data-' + cls.replace('_', '-'))?.match(/[^\s,]+/g) || []).map((g): [string, RegExp] => [
      cls,
      RegExp('^' + g.replace(/[^\w*/-]/g, '\\$&').replace(/\*/g, '.*') + '$'),
    ]),
  );

/** The class the site gave this path, if any (first match wins). */
export const classOf = (classes: PageClasses, path: string): string | undefined => classes.find(([, re]) => re.test(path))?.[0];

/** The data of a pageview of the current page. */
export const pageviewData = (classes: PageClasses, spa: boolean): Data => ({ spa: opt(spa), pageClass: classOf(classes, location.pathname) });

/** A clicked link as it may be recorded: http(s) only (no `mailto:` or `tel:` addresses), with
 * its campaign tags (`utm_*`) but no other query parameter (tokens, `?email=`) and no fragment;
 * `null` for anything else. */
export function safeHref(href: string): string | null {
  // An anchor's `href` is already absolute and normalised by the browser.
  const [base, query] = href.split('#')[0].split('?');
  return /^https?:/i.test(base) ? cut(base + ('&' + query).replace(/&(?!utm_)[^&]*/g, '').replace('&', '?')) : null;
}

/** Whitespace collapsed, at most `max` characters — counted as the contract counts them (code
 * points): a cut through an emoji's surrogate pair would leave half of it, which the servers
 * read as U+FFFD (older `oie run` refused the whole batch for it). */
export const trimText = (text: string, max: number): string => [...text.replace(/\s+/g, ' ').trim()].slice(0, max).join('');

const formId = (form: HTMLFormElement): string =>
  // Attributes, not properties: a field named "id" or "name" shadows those.
  trimText(form.getAttribute('id') || form.getAttribute('name') || 'form-' + [...document.forms].indexOf(form), 128);

/** Watches the page; `hidden` runs each time the tab is hidden (after `focus_lost`) and when
 * the page goes away (after `page_exit`). */
export function watch(emit: Emit, classes: PageClasses, hidden: () => void): void {
  const d = document;
  const visible = () => d.visibilityState == 'visible';
  // Per page, renewed on SPA navigation: where (null once left), its path and query, deepest
  // scroll (%), active ms, visible since (0: hidden).
  let at: At | null;
  let path: string;
  let depth: number;
  let activeMs: number;
  let visibleSince: number;
  const enter = () => {
    at = here();
    path = location.pathname + location.search;
    depth = activeMs = 0;
    visibleSince = visible() ? now() : 0;
  };
  enter();
  const started = new WeakSet<HTMLFormElement>();
  /** The last milestone each video reached (-1 before it played). */
  const videos = new WeakMap<HTMLMediaElement, number>();
  let scrollTimer: unknown = 0;

  const exit = () => {
    if (at)
      // Whole milliseconds already (Date.now() differences); never negative, even when the wall
      // clock was set back meanwhile (the contract would refuse the batch whole).
      emit('page_exit', { activeMs: Math.max(0, activeMs + (visibleSince && now() - visibleSince)), maxScrollDepth: Math.min(100, Math.round(depth)) }, at);
    at = null;
  };

  const checkScroll = safe(() => {
    scrollTimer = 0;
    // Over 100 when the page fits the window: every milestone is reached.
    const percent = ((scrollY + innerHeight) / d.scrollingElement!.scrollHeight) * 100;
    newMarks(depth, percent).forEach((m) => emit('scroll_depth', { depth: m }));
    depth = Math.max(depth, percent || 0); // NaN in an empty frame of no height
  });

  const navigated = safe(() => {
    if (location.pathname + location.search == path) return;
    exit();
    enter();
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

  // Passive, and delegated to the document in the capture phase: one listener per event type
  // whatever the page holds, and nothing the page does can stop it. (A box scrolling inside the
  // page reaches the window's scroll listener too; the page's own depth is what gets measured.)
  const on = (type: string, fn: (e: Event) => unknown, target: EventTarget = d) =>
    target.addEventListener(type, safe(fn), { capture: true, passive: true });

  on('popstate', navigated, window);
  on('scroll', () => (scrollTimer ||= setTimeout(checkScroll, 200)), window);

  on('click', (e) => {
    const el = (e.target as Element).closest('a,button');
    if (el)
      emit('click', {
        tag: el.localName,
        id: opt(trimText(el.id, 128)),
        classes: opt(trimText(el.getAttribute('class') || '', 256)),
        text: opt(trimText((el as HTMLElement).innerText ?? el.textContent, 100)),
        href: opt(el instanceof HTMLAnchorElement && safeHref(el.href)),
      });
  });

  on('focusin', (e) => {
    const form = (e.target as HTMLInputElement).form;
    if (form && !started.has(form)) {
      started.add(form);
      emit('form_start', { formId: formId(form) });
    }
  });

  on('submit', (e) => {
    const form = e.target as HTMLFormElement;
    const fields: string[] = [];
    const hashes: (Promise<string> | undefined)[] = [];
    for (const el of form.elements as unknown as HTMLInputElement[]) {
      const name = trimText(el.name || '', 128);
      const value = el.value?.trim().toLowerCase();
      if (name && fields.length < 50 && !fields.includes(name)) fields.push(name);
      // Only a hash of the address leaves the browser, never the address.
      if (value?.includes('@') && (el.type == 'email' || /e-?mail/i.test(name)) && hashes.length < 10) hashes.push(sha256Hex(value));
    }
    Promise.all(hashes)
      .then((all) => {
        const emailHashes = all.filter(Boolean);
        emit('form_submit', { formId: formId(form), fields, emailHashes: opt(emailHashes[0] && emailHashes) });
      })
      .catch(() => {});
  });

  const video = (e: Event) => {
    // Only media elements send these (a forged one has no currentSrc: cut() throws, safe() stops it).
    const v = e.target as HTMLMediaElement;
    const seen = videos.get(v) ?? -1;
    // NaN (no duration yet) and Infinity (a live stream) reach no milestone.
    const marks = newMarks(seen, (v.currentTime / v.duration) * 100);
    if (e.type == 'play' && seen < 0) marks.unshift(0);
    marks.forEach((m) => emit('video_play', { src: cut(v.currentSrc), percent: m }));
    videos.set(v, Math.max(seen, ...marks));
  };
  on('play', video);
  on('timeupdate', video);

  on('visibilitychange', () => {
    if (!visible()) {
      activeMs += visibleSince && now() - visibleSince;
      visibleSince = 0;
      emit('focus_lost');
      hidden();
    } else visibleSince ||= now();
  });

  on('pagehide', () => {
    exit();
    hidden();
  }, window);
}
