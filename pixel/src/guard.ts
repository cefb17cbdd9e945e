// The pixel never throws into the host page: every handler runs through `safe`.

export function safe<A extends unknown[]>(fn: (...args: A) => unknown): (...args: A) => void {
  return (...args: A) => {
    try {
      const r = fn(...args);
      if (r && typeof (r as Promise<unknown>).catch === 'function') (r as Promise<unknown>).catch(() => {});
    } catch {
      // A broken page or browser costs events, never the host page.
    }
  };
}
