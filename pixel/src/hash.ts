// SHA-256 of e-mail values, so the server can match a form to a person without ever seeing
// the address. Only in secure contexts (crypto.subtle); elsewhere no hash is sent.

// Promise chains rather than async functions: lowering those to ES2015 costs bytes.
export function sha256Hex(text: string): Promise<string | null> {
  try {
    return crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)).then(
      (digest) => Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join(''),
      () => null,
    );
  } catch {
    return Promise.resolve(null);
  }
}

export function normalizeEmail(value: string): string {
  return value.trim().toLowerCase();
}
