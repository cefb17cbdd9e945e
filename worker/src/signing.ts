/** Signatures of server-side senders, the same as `oie run`'s:
 * `X-OIE-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`. The timestamp
 * is inside what is signed and must be within five minutes of now, so a captured request cannot
 * be sent again later. */

import { hex } from "./http";

export const SIGNATURE_HEADER = "x-oie-signature";

/** How far a signature's timestamp may be from now, either way (seconds). */
export const TOLERANCE_S = 300;

async function key(secret: string, usage: "sign" | "verify"): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [
    usage,
  ]);
}

function signed(t: number, body: string): Uint8Array {
  return new TextEncoder().encode(`${t}.${body}`);
}

/** The header value for `body` at `t` (unix seconds): what a server-side sender computes. */
export async function sign(secret: string, t: number, body: string): Promise<string> {
  const mac = await crypto.subtle.sign("HMAC", await key(secret, "sign"), signed(t, body));
  return `t=${t},v1=${hex(mac)}`;
}

/** Checks `header` against `body` at `nowS` (unix seconds): `null` when it holds, else what to
 * fix. The MAC is compared in constant time by WebCrypto. */
export async function verify(secret: string, body: string, header: string, nowS: number): Promise<string | null> {
  const value = header.trim();
  if (value.startsWith("sha256=")) {
    return 'X-OIE-Signature uses the old `sha256=<hex>` form; sign "<unix seconds>.<body>" and send `t=<unix seconds>,v1=<hex>`';
  }
  const parts = new Map(value.split(",").map((p) => p.trim().split("=", 2) as [string, string]));
  const t = Number(parts.get("t"));
  const v1 = parts.get("v1") ?? "";
  if (!Number.isInteger(t) || !/^([0-9a-f]{2})+$/.test(v1)) {
    return 'X-OIE-Signature must be `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`';
  }
  if (Math.abs(nowS - t) > TOLERANCE_S) {
    return `X-OIE-Signature is more than ${TOLERANCE_S} seconds from now (t=${t}); sign each request as it is sent`;
  }
  const mac = new Uint8Array(v1.match(/../g)!.map((h) => parseInt(h, 16)));
  const ok = await crypto.subtle.verify("HMAC", await key(secret, "verify"), mac, signed(t, body));
  return ok ? null : "X-OIE-Signature does not match the body";
}
