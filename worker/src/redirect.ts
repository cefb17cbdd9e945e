/** Where `/go` may send a visitor: relative paths, or hosts on the allow-list. Anything else —
 * a foreign absolute URL, `//evil.example`, `javascript:`, backslash and encoding tricks — goes
 * to the site root, so /go is never an open redirect. */

const BASE = "https://oie-base.invalid/";

export function redirectTarget(to: string, id: string | null, allowedHosts: string[]): string {
  let target: URL;
  try {
    target = new URL(to, BASE);
  } catch {
    return "/";
  }
  const relative = target.host === "oie-base.invalid" && to.startsWith("/") && !to.startsWith("//");
  const allowed =
    (target.protocol === "http:" || target.protocol === "https:") &&
    allowedHosts.some((h) => h.toLowerCase() === target.hostname.toLowerCase()) &&
    target.username === "" &&
    target.password === "";
  if (!(relative || allowed)) return "/";
  if (id !== null) target.searchParams.append("i", id);
  return relative ? `${target.pathname}${target.search}${target.hash}` : target.toString();
}
