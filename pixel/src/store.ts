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

/** localStorage when it works, else memory. */
export function browserKV(): KV {
  try {
    const s = window.localStorage;
    const probe = '_oie_probe';
    s.setItem(probe, '1');
    s.removeItem(probe);
    return {
      get: (k) => { try { return s.getItem(k); } catch { return null; } },
      set: (k, v) => { try { s.setItem(k, v); } catch { /* full or blocked: keep going */ } },
      del: (k) => { try { s.removeItem(k); } catch { /* blocked */ } },
    };
  } catch {
    return memoryKV();
  }
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
