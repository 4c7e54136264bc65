/**
 * @module Host header → route key. Hosts compare case-insensitively and without
 * the port (RFC 9110 § 4.2.3; Gorouter does the same), and a trailing dot names
 * the same host (`app.example.` is `app.example`).
 */

const OPEN_BRACKET = 91; // "["
const DOT = 46; // "."

/** The lookup key for a Host header value; "" when there is none. */
export function routeKey(hostHeader: string | undefined): string {
  if (hostHeader === undefined || hostHeader.length === 0) return "";
  let end = hostHeader.length;
  if (hostHeader.charCodeAt(0) === OPEN_BRACKET) {
    // An IPv6 literal: the port, if any, follows the closing bracket.
    const close = hostHeader.indexOf("]");
    if (close !== -1) end = close + 1;
  } else {
    const colon = hostHeader.indexOf(":");
    if (colon !== -1) end = colon;
  }
  if (end > 0 && hostHeader.charCodeAt(end - 1) === DOT) end--;
  return (end === hostHeader.length ? hostHeader : hostHeader.slice(0, end)).toLowerCase();
}
