// fetch with keepalive and a text/plain body (a "simple" request: no CORS preflight), and
// sendBeacon when the page goes away.

import type { Result, Transport } from './queue';

export function httpTransport(endpoint: string): Transport {
  return {
    send(body: string): Promise<Result> {
      const failed: Result = { ok: false, retry: true };
      try {
        return fetch(endpoint, {
          method: 'POST',
          body,
          keepalive: body.length < 60_000,
          credentials: 'omit',
          headers: { 'Content-Type': 'text/plain' },
        }).then((r): Result => {
          if (r.ok) return { ok: true };
          const after = Number(r.headers.get('Retry-After'));
          return { ok: false, retry: r.status === 429 || r.status >= 500, afterMs: after > 0 ? after * 1000 : undefined };
        }, () => failed);
      } catch {
        return Promise.resolve(failed);
      }
    },
    beacon(body: string): boolean {
      try {
        return !!navigator.sendBeacon && navigator.sendBeacon(endpoint, new Blob([body], { type: 'text/plain' }));
      } catch {
        return false;
      }
    },
  };
}
