// The benchmark's floor: the browser calls the pixel cannot do without while a page loads on a
// first visit from an e-mail link, with no code around them — take `i` out of the address (first
// task), then, when the browser is idle, store the visitor, session and queue in localStorage,
// set the cookie and listen to ten events. No request: the pageview waits for the first batch
// (5 events, 10 s, or the page going away). What oie.js costs above this is its own; what this
// costs is the platform's. `data-skip="strip"` or `"storage"` on the script tag leaves out
// `replaceState` or localStorage (a Map instead): what those two cost alone.
(() => {
  const skip = document.currentScript.getAttribute('data-skip') || '';
  const u = new URL(location.href);
  const i = u.searchParams.get('i');
  if (i !== null && skip != 'strip') {
    u.searchParams.delete('i');
    history.replaceState(history.state, '', u.pathname + u.search + u.hash);
  }
  requestIdleCallback(() => {
    const m = new Map();
    const s = skip == 'storage' ? { getItem: (k) => m.get(k), setItem: (k, v) => m.set(k, v) } : localStorage;
    s.getItem('_oie_queue');
    s.setItem('_oie_visitor', JSON.stringify({ visitorId: i, timestamp: Date.now() }));
    document.cookie = `_oie_vid=${i}; Max-Age=7776000; Path=/; SameSite=Lax`;
    s.getItem('_oie_session');
    s.setItem('_oie_session', 'session ' + Date.now());
    const events = [{ eventId: String(Math.random()), type: 'pageview', timestamp: Date.now(), sessionId: 'session', url: location.href, path: location.pathname }];
    s.setItem('_oie_queue', JSON.stringify(events));
    for (const t of ['click', 'focusin', 'submit', 'play', 'timeupdate', 'visibilitychange']) document.addEventListener(t, () => {}, { capture: true, passive: true });
    for (const t of ['scroll', 'pagehide', 'popstate']) addEventListener(t, () => {}, { passive: true });
  }, { timeout: 1000 });
})();
