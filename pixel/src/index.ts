// The Outbound Intent Engine pixel. Load it with
//   <script async src="https://YOUR-HOST/oie.js" data-endpoint="https://YOUR-HOST/track"></script>
// and, before it, optionally the command queue:
//   <script>window.oie = window.oie || function(){(oie.q = oie.q || []).push(arguments)}</script>
// Commands: oie('consent', true | false).

import { safe } from './guard';
import { forget, resolveVisitor, splitId } from './identity';
import { Queue } from './queue';
import { touchSession } from './session';
import { browserKV, now, randomId } from './store';
import { At, cut, opt, here, PageClasses, pageClasses, pageviewData, trimText, watch } from './trackers';
import { httpTransport } from './transport';

type Command = unknown[];
interface Oie {
  (...args: unknown[]): void;
  q?: Command[];
  loaded?: boolean;
}

const CONSENT_KEY = '_oie_consent';

safe(() => {
  const w = window as unknown as { oie?: Oie };
  if (w.oie?.loaded) return;
  // The id leaves the address bar now, in the page's first task and whatever the consent:
  // analytics and chat scripts, and a forwarded link, never see it. It stays in memory.
  const [urlId, clean] = splitId(location.href);
  if (clean !== null) history.replaceState(history.state, '', clean);
  // Only known while this first task runs; its attributes are read when the browser is idle.
  const script = document.currentScript as HTMLScriptElement | null;
  const attr = (name: string) => script?.getAttribute('data-' + name);
  const secure = location.protocol == 'https:';
  const gpc = !!(navigator as { globalPrivacyControl?: boolean }).globalPrivacyControl;
  // Storage is first touched when the browser is idle (see `boot`): that costs milliseconds.
  const kv = browserKV();
  let queue: Queue | undefined;
  let classes: PageClasses;
  let consent: unknown = false;
  let visitorId: string | null = null;
  let started = false;

  const emit = (type: string, data?: Record<string, unknown>, at: At = here()) =>
    consent &&
    queue!.push(
      {
        eventId: randomId(),
        type,
        timestamp: now(),
        sessionId: touchSession(kv, now()),
        ...at,
        visitorId: opt(visitorId),
        title: opt(trimText(document.title, 512)),
        referrer: opt(cut(document.referrer)),
        data,
      },
      type == 'form_submit',
    );

  // The pageview waits in the first batch like every other event (5 events, 10 s, or the page
  // going away): no request while the page loads.
  const start = () => {
    if (!consent) return;
    visitorId = resolveVisitor(kv, document, urlId, secure, now());
    if (started) return;
    started = true;
    emit('pageview', pageviewData(classes, false));
    watch(emit, classes, () => queue!.flushOnExit());
  };

  const setConsent = (granted: boolean) => {
    consent = granted && !gpc;
    if (consent) {
      kv.set(CONSENT_KEY, '1');
      start();
    } else {
      kv.del(CONSENT_KEY);
      queue!.clear();
      forget(kv, document);
      visitorId = null;
    }
  };

  // Calls made before the pixel loaded (the snippet's queue) run when it boots.
  const pending: Command[] = w.oie?.q || [];
  // A call boots the pixel at once if the browser has not been idle yet.
  const oie: Oie = safe((command: unknown, value: unknown) => {
    boot();
    if (command == 'consent') setConsent(value === true);
  });
  oie.loaded = true;
  w.oie = oie;

  // Everything else waits until the browser is idle (at most 1 s), so loading the pixel costs
  // the page almost nothing: first use of storage and cookies takes milliseconds.
  const boot = () => {
    if (queue) return;
    classes = pageClasses(script);
    queue = new Queue(kv, httpTransport(attr('endpoint') || new URL('/track', script?.src || location.href).href), {
      now,
      setTimeout: (fn, ms) => setTimeout(safe(fn), ms),
    });
    // Global Privacy Control: no tracking, and no identity kept from before.
    if (gpc) setConsent(false);
    else consent = attr('consent') != 'required' || kv.get(CONSENT_KEY);
    for (const command of pending) oie(...command);
    start();
  };
  // Where there is no requestIdleCallback (Safari), setTimeout reads the options as 0 ms.
  ((window.requestIdleCallback || setTimeout) as typeof requestIdleCallback)(safe(boot), { timeout: 1000 });
})();
