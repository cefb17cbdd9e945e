// The pixel never throws into the host page: every handler runs through `safe`.

// (The one handler that goes on asynchronously, form submission, catches its own promise.)
export const safe =
  <A extends unknown[]>(fn: (...args: A) => unknown) =>
  (...args: A): void => {
    try {
      fn(...args);
    } catch {
      // A broken page or browser costs events, never the host page.
    }
  };
