// The Outbound Intent Engine pixel. Load it with
//   <script async src="https://YOUR-HOST/oie.js" data-endpoint="https://YOUR-HOST/track"></script>
// and, before it, optionally the command queue:
//   <script>window.oie = window.oie || function(){(oie.q = oie.q || []).push(arguments)}</script>
// Commands: oie('consent', true | false).

import { safe } from './guard';
import { forget, remember, resolveVisitor, splitId } from './identity';
import { Queue } from './queue';
import { touchSession } from './session';
import { browserKV, KV, randomId } from './store';
import { cut, here, PageClasses, pageClasses, pageviewData, watch } from './trackers';
import { httpTransport } from './transport';

type Command = ArrayLike<unknown>;
interface Oie {
  (...args: unknown[]): void;
  q?: Command[];
  loaded?: boolean;
}

const CONSENT_KEY = '_oie_consent';

safe(() => {
  const w = window as unknown as { oie?: Oie };
  if (w.oie && w.oie.loaded) return;
  // The id leaves the address bar now, in the page's first task and whatever the consent:
  // analytics and chat scripts, and a forwarded link, never see it. It stays in memory.
  const [urlId, clean] = splitId(location.href);
  const secure = location.protocol === 'https:';
  if (clean !== null) history.replaceState(history.state, '', clean);
  // Only known while this first task runs; its attributes are read when the browser is idle.
  const script = document.currentScript as HTMLScriptElement | null;
  const now = () => Date.now();
  const gpc = (navigator as Navigator & { globalPrivacyControl?: boolean }).globalPrivacyControl === true;
  // Made when the browser is idle (see `boot`): touching localStorage costs milliseconds.
  let kv: KV;
  let queue: Queue;
  let classes: PageClasses;
  let booted = false;

  let consent = false;
  let visitorId: string | null = null;
  let started = false;

  const emit = (type: string, data?: Record<string, unknown>, at?: { url: string; path: string }) => {
    if (!consent) return;
    const where = at || here();
    const event: Record<string, unknown> & { eventId: string } = {
      eventId: randomId(),
      type,
      timestamp: now(),
      sessionId: touchSession(kv, now()),
      url: where.url,
      path: where.path,
    };
    if (visitorId) event.visitorId = visitorId;
    if (document.title) event.title = document.title.slice(0, 512);
    if (document.referrer) event.referrer = cut(document.referrer);
    if (data) event.data = data;
    queue.push(event, type === 'form_submit');
  };

  const start = () => {
    if (started || !consent) return;
    started = true;
    visitorId = resolveVisitor(kv, document, urlId, secure, now());
    emit('pageview', pageviewData(classes, false));
    const pages = watch(emit, now, classes, () => queue.flushOnExit());
    window.addEventListener('pagehide', safe(() => {
      pages.exit();
      queue.flushOnExit();
    }));
    void queue.flush();
  };

  const setConsent = (granted: boolean) => {
    consent = granted && !gpc;
    if (consent) {
      kv.set(CONSENT_KEY, '1');
      start();
      if (visitorId) remember(kv, document, visitorId, secure, now());
    } else {
      kv.del(CONSENT_KEY);
      queue.clear();
      forget(kv, document);
      visitorId = null;
    }
  };

  const pending: Command[] = (w.oie && w.oie.q) || [];
  const oie = safe((...args: unknown[]) => {
    if (!booted) pending.push(args);
    else if (args[0] === 'consent') setConsent(args[1] === true);
  }) as Oie;
  oie.loaded = true;
  w.oie = oie;

  // Everything else waits until the browser is idle (at most 1 s), so loading the pixel costs
  // the page almost nothing: first use of storage, cookies and the network takes milliseconds.
  const later = (window as Window & { requestIdleCallback?: (fn: () => void, o: { timeout: number }) => void })
    .requestIdleCallback;
  const boot = safe(() => {
    const endpoint = script?.getAttribute('data-endpoint') || (script ? new URL('/track', script.src).href : '/track');
    const requireConsent = script?.getAttribute('data-consent') === 'required';
    classes = pageClasses(script);
    kv = browserKV();
    queue = new Queue(kv, httpTransport(endpoint), { now, setTimeout: (fn, ms) => setTimeout(safe(fn), ms) });
    consent = !gpc && (!requireConsent || kv.get(CONSENT_KEY) === '1');
    booted = true;
    if (gpc) {
      // Global Privacy Control: no tracking, and no identity kept from before.
      queue.clear();
      forget(kv, document);
    }
    for (const command of pending) oie(...Array.prototype.slice.call(command));
    start();
  });
  if (later) later(boot, { timeout: 1000 });
  else setTimeout(boot, 1);
})();
