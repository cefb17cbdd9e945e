/** Google service-account tokens: an RS256 JWT signed with WebCrypto, exchanged at the token
 * URL, cached until five minutes before it expires (one token for many batches). */

import { type Env, type Io } from "./env";

const SCOPES = "https://www.googleapis.com/auth/bigquery https://www.googleapis.com/auth/pubsub";
const RENEW_BEFORE_MS = 5 * 60 * 1000;

interface ServiceAccount {
  client_email: string;
  private_key: string;
  token_uri?: string;
}

interface Cached {
  token: string;
  renewAt: number;
  /** The key it was minted for, so a rotated secret gets a new token. */
  account: string;
}

let cached: Cached | null = null;
let minting: Promise<Cached> | null = null;

/** Forgets the cached token (tests; and after a 401). */
export function resetToken(): void {
  cached = null;
  minting = null;
}

/** A failure that is worth retrying later (network, 5xx) or not (a refused key). */
export class AuthError extends Error {
  constructor(
    message: string,
    readonly retry: boolean,
  ) {
    super(message);
  }
}

export async function accessToken(env: Env, io: Io): Promise<string> {
  const secret = env.GCP_SERVICE_ACCOUNT;
  if (!secret) throw new AuthError("GCP_SERVICE_ACCOUNT is not set (wrangler secret put GCP_SERVICE_ACCOUNT)", false);
  if (cached && cached.account === secret && io.now() < cached.renewAt) return cached.token;
  minting ??= mint(secret, io).finally(() => {
    minting = null;
  });
  cached = await minting;
  return cached.token;
}

async function mint(secret: string, io: Io): Promise<Cached> {
  let account: ServiceAccount;
  try {
    account = JSON.parse(secret) as ServiceAccount;
  } catch {
    throw new AuthError("GCP_SERVICE_ACCOUNT is not a service-account key (JSON)", false);
  }
  const tokenUrl = account.token_uri ?? "https://oauth2.googleapis.com/token";
  const now = Math.floor(io.now() / 1000);
  const assertion = await signJwt(
    { alg: "RS256", typ: "JWT" },
    { iss: account.client_email, scope: SCOPES, aud: tokenUrl, iat: now, exp: now + 3600 },
    account.private_key,
  );
  let response: Response;
  try {
    response = await io.fetch(tokenUrl, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "urn:ietf:params:oauth:grant-type:jwt-bearer", assertion }),
    });
  } catch (e) {
    throw new AuthError(`token request failed: ${(e as Error).message}`, true);
  }
  const body = (await response.json().catch(() => ({}))) as {
    access_token?: string;
    expires_in?: number;
    error?: string;
    error_description?: string;
  };
  if (!response.ok || !body.access_token) {
    const why = body.error ? `${body.error}: ${body.error_description ?? ""}` : `HTTP ${response.status}`;
    throw new AuthError(`Google refused the service-account token request (${why})`, response.status >= 500);
  }
  const lives = (body.expires_in ?? 3600) * 1000;
  return { token: body.access_token, renewAt: io.now() + lives - RENEW_BEFORE_MS, account: secret };
}

function base64url(data: ArrayBuffer | Uint8Array | string): string {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : new Uint8Array(data);
  let text = "";
  for (const b of bytes) text += String.fromCharCode(b);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Signs a JWT with an RSA private key in PKCS#8 PEM form. */
export async function signJwt(header: object, claims: object, pem: string): Promise<string> {
  const body = pem.replace(/-----(BEGIN|END) PRIVATE KEY-----/g, "").replace(/\s+/g, "");
  const der = Uint8Array.from(atob(body), (c) => c.charCodeAt(0));
  const key = await crypto.subtle.importKey("pkcs8", der, { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }, false, [
    "sign",
  ]);
  const input = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
  const signature = await crypto.subtle.sign("RSASSA-PKCS1-v1_5", key, new TextEncoder().encode(input));
  return `${input}.${base64url(signature)}`;
}
