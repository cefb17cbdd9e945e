/** Where `/go` sends a browser. One rule, shared with `oie run` through
 * `contract/redirects.json`: resolve `to` the way a browser would (WHATWG URL) against the
 * site's origin; keep a same-origin result as a path and an http(s) URL on an allowed host as it
 * is; send anything else to `/`. The Location is checked once more before it is sent, so one a
 * browser would read as another host (`//evil.example`, after dot segments collapse) is never
 * emitted. */

import { isId } from "./http";

/** Stands in for the site's origin while resolving: only whether a result stays on it matters. */
const SITE = "https://oie-base.invalid/";

/** Allowed hosts as URLs serialize them (lower case, IDN as punycode). */
export function normalizeHosts(hosts: string[]): string[] {
  return hosts.flatMap((h) => {
    try {
      return [new URL(`https://${h.trim()}/`).hostname];
    } catch {
      return [];
    }
  });
}

/** The visitor id and the Location for `/go` with these query parameters (the first `i` and
 * the first `to` count). */
export function resolveGo(params: URLSearchParams, hosts: string[]): { id: string | null; location: string } {
  const raw = params.get("i");
  const id = isId(raw) ? raw : null;
  return { id, location: redirectTarget(params.get("to") ?? "/", id, hosts) };
}

/** The Location for `to`, with `id` appended as `i`; `hosts` as `normalizeHosts` gives them. */
export function redirectTarget(to: string, id: string | null, hosts: string[]): string {
  const site = new URL(SITE);
  let target: URL;
  try {
    target = new URL(to, site);
  } catch {
    return "/";
  }
  const sameSite = target.origin === site.origin;
  if (!sameSite && !allowed(target, hosts)) return "/";
  target.searchParams.delete("i");
  if (id !== null) target.searchParams.append("i", id);
  const location = sameSite ? `${target.pathname}${target.search}${target.hash}` : target.href;
  return landsHereOrAllowed(site, location, hosts) ? location : "/";
}

function allowed(target: URL, hosts: string[]): boolean {
  return (
    (target.protocol === "http:" || target.protocol === "https:") &&
    target.username === "" &&
    target.password === "" &&
    hosts.includes(target.hostname)
  );
}

/** The last check: where a browser would go with this Location. */
function landsHereOrAllowed(site: URL, location: string, hosts: string[]): boolean {
  try {
    if (location.startsWith("/")) {
      return location[1] !== "/" && location[1] !== "\\" && new URL(location, site).origin === site.origin;
    }
    return allowed(new URL(location), hosts);
  } catch {
    return false;
  }
}
