/** HMAC signing for server-side senders: `X-OIE-Signature: sha256=<hex of HMAC-SHA256(body)>`. */

import { hex } from "./http";

export const SIGNATURE_HEADER = "x-oie-signature";

async function key(secret: string, usage: "sign" | "verify"): Promise<CryptoKey> {
  return crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    [usage],
  );
}

/** The header value for `body` (what a server-side sender computes). */
export async function sign(secret: string, body: string): Promise<string> {
  const mac = await crypto.subtle.sign("HMAC", await key(secret, "sign"), new TextEncoder().encode(body));
  return `sha256=${hex(mac)}`;
}

/** Whether `header` is the signature of `body` (compared in constant time by WebCrypto). */
export async function verify(secret: string, body: string, header: string): Promise<boolean> {
  const match = /^sha256=([0-9a-f]{64})$/.exec(header.trim());
  if (!match?.[1]) return false;
  const mac = new Uint8Array(match[1].match(/../g)!.map((h) => parseInt(h, 16)));
  return crypto.subtle.verify("HMAC", await key(secret, "verify"), mac, new TextEncoder().encode(body));
}
