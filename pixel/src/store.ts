// Storage that never throws: localStorage can be missing, full or blocked by privacy settings.

export interface KV {
  get(key: string): string | null;
  set(key: string, value: string): void;
  del(key: string): void;
}

export function memoryKV(): KV {
  const m: Record<string, string> = {};
  return {
    get: (k) => (k in m ? m[k] : null),
    set: (k, v) => { m[k] = v; },
    del: (k) => { delete m[k]; },
  };
}

/** localStorage when it works, else memory. Opened on first use, without a probe write: the
 * first access to localStorage is the pixel's dearest call (the browser loads the origin's
 * storage area), so it is paid once, and a write that fails falls back to memory. */
export function browserKV(): KV {
  let kv: KV | undefined;
  const open = (): KV => {
    if (kv) return kv;
    try {
      const s = window.localStorage;
      if (!s) throw 0;
      return (kv = {
        get: (k) => { try { return s.getItem(k); } catch { return null; } },
        set: (k, v) => { try { s.setItem(k, v); } catch { /* full or blocked: keep going */ } },
        del: (k) => { try { s.removeItem(k); } catch { /* blocked */ } },
      });
    } catch {
      return (kv = memoryKV());
    }
  };
  return { get: (k) => open().get(k), set: (k, v) => open().set(k, v), del: (k) => open().del(k) };
}

export function readJSON<T>(kv: KV, key: string): T | null {
  const raw = kv.get(key);
  if (!raw) return null;
  try { return JSON.parse(raw) as T; } catch { return null; }
}

/** A random id: 16 base-36 characters. */
export function randomId(): string {
  const bytes = new Uint8Array(10);
  crypto.getRandomValues(bytes);
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += (bytes[i] % 36).toString(36);
  return Date.now().toString(36) + s;
}
