// SHA-256 of e-mail values, so the server can match a form to a person without ever seeing
// the address. Only in secure contexts (crypto.subtle); elsewhere no hash is sent.
export const sha256Hex = (text: string): Promise<string> | undefined =>
  crypto.subtle?.digest('SHA-256', new TextEncoder().encode(text)).then((digest) =>
    [...new Uint8Array(digest)].map((b) => (b | 256).toString(16).slice(1)).join(''),
  );
