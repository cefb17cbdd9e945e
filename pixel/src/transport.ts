// fetch with keepalive and a string body (sent as text/plain: a "simple" request, no CORS
// preflight), and sendBeacon when the page goes away.

import type { Result, Transport } from './queue';

export function httpTransport(endpoint: string): Transport {
  return {
    send(body) {
      // A fetch that throws at once (a page's broken polyfill) leaves the events queued.
      // Batches stay under 64 KB, the browser's allowance for keepalive requests. Cookies go to
      // the page's own origin only (fetch's default), as they do with sendBeacon.
      // Retry-After in seconds: 0 when absent, NaN for a date, both of which the queue reads as none.
      return fetch(endpoint, { method: 'POST', body, keepalive: true }).then(
        (r) => ({ ok: r.ok, retry: r.status == 429 || r.status > 499, afterMs: +r.headers.get('Retry-After')! * 1000 }) as Result,
        () => ({ retry: true }) as Result,
      );
    },
    beacon: (body) => navigator.sendBeacon(endpoint, body),
  };
}
