// Storage that never throws: localStorage can be missing, full or blocked by privacy settings.

export interface KV {
  get(key: string): string | null | void;
  set(key: string, value: string): void;
  del(key: string): void;
}

export function memoryKV(): KV {
  const m = new Map<string, string>();
  return { get: (k) => m.get(k) ?? null, set: (k, v) => void m.set(k, v), del: (k) => void m.delete(k) };
}

/** localStorage, and memory for what it refuses (blocked, full). No probe write: the first
 * touch of localStorage is the pixel's dearest call (the browser loads the origin's storage
 * area), so the first real read pays it. */
export function browserKV(): KV {
  const m = new Map<string, string>();
  const use = <T>(f: (s: Storage) => T, fallback?: () => void): T | void => {
    try {
      return f(localStorage);
    } catch {
      fallback?.();
    }
  };
  return {
    // Undefined, like a missing key, when localStorage throws.
    get: (k) => m.get(k) ?? use((s) => s.getItem(k)),
    set: (k, v) => {
      m.delete(k);
      use((s) => s.setItem(k, v), () => m.set(k, v));
    },
    del: (k) => {
      m.delete(k);
      use((s) => s.removeItem(k));
    },
  };
}

/** The JSON stored at `key`: null when there is none, undefined when it does not parse. */
export function readJSON<T>(kv: KV, key: string): T | undefined {
  try {
    return JSON.parse(kv.get(key)!) as T;
  } catch {
    return undefined; // junk
  }
}

/** Milliseconds since the epoch (Date.now needs no `this`). */
export const now = Date.now;

/** An id as the contract has it (visitor, session). */
export const isId = (value: unknown): value is string => typeof value == 'string' && /^[\w.:-]{1,64}$/.test(value);

/** A random id: 128 random bits. */
export const randomId = (): string => crypto.getRandomValues(new Uint32Array(4)).join('-');
