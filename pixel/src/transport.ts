// fetch with keepalive and a text/plain body (a "simple" request: no CORS preflight), and
// sendBeacon when the page goes away.

import type { Result, Transport } from './queue';

export function httpTransport(endpoint: string): Transport {
  return {
    async send(body: string): Promise<Result> {
      try {
        const r = await fetch(endpoint, {
          method: 'POST',
          body,
          keepalive: body.length < 60_000,
          credentials: 'omit',
          headers: { 'Content-Type': 'text/plain' },
        });
        if (r.ok) return { ok: true };
        const retry = r.status === 429 || r.status >= 500;
        const after = Number(r.headers.get('Retry-After'));
        return { ok: false, retry, afterMs: after > 0 ? after * 1000 : undefined };
      } catch {
        return { ok: false, retry: true };
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
