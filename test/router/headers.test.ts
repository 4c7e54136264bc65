import { describe, expect, it } from "vitest";
import { clientAddress, clientResponseHeaders, upstreamRequestHeaders } from "../../agent/router/headers";

const fwd = { clientAddress: "192.0.2.9", proto: "http", trusted: false, newRequestId: () => "made-id" };

describe("upstreamRequestHeaders", () => {
  it("drops hop-by-hop fields, including those Connection names, and adds the forwarded ones", () => {
    const out = upstreamRequestHeaders(
      ["Host", "a.test", "Connection", "keep-alive, X-Secret-Hop", "X-Secret-Hop", "1", "Keep-Alive", "timeout=5", "TE", "trailers", "Accept", "*/*"],
      fwd,
      false,
    );
    expect(out.headers).toEqual(["Host", "a.test", "Accept", "*/*", "X-Forwarded-For", "192.0.2.9", "X-Forwarded-Proto", "http", "X-Forwarded-Host", "a.test", "X-Request-Id", "made-id"]);
    expect(out).toMatchObject({ requestId: "made-id", host: "a.test", hasBody: false });
  });

  it("keeps Connection and Upgrade for an upgrade", () => {
    const out = upstreamRequestHeaders(["Host", "a.test", "Connection", "Upgrade", "Upgrade", "websocket"], fwd, true);
    expect(out.headers.slice(0, 6)).toEqual(["Host", "a.test", "Connection", "Upgrade", "Upgrade", "websocket"]);
  });

  const claimed = ["x-forwarded-for", "203.0.113.1", "X-Forwarded-For", "198.51.100.2", "X-Request-Id", "abc", "X-Forwarded-Proto", "https", "X-Forwarded-Host", "pub.test", "Forwarded", "for=203.0.113.1"];

  it("from a trusted proxy, merges X-Forwarded-For and keeps an incoming request id, proto, forwarded host and Forwarded", () => {
    const out = upstreamRequestHeaders(claimed, { ...fwd, trusted: true }, false);
    expect(out.headers).toEqual([
      "X-Request-Id", "abc", "X-Forwarded-Proto", "https", "X-Forwarded-Host", "pub.test", "Forwarded", "for=203.0.113.1",
      "X-Forwarded-For", "203.0.113.1, 198.51.100.2, 192.0.2.9",
    ]);
    expect(out.requestId).toBe("abc");
    expect(out.host).toBe("");
  });

  it("from anyone else, replaces X-Forwarded-For/Proto/Host and drops Forwarded", () => {
    const out = upstreamRequestHeaders(["Host", "a.test", ...claimed], fwd, false);
    expect(out.headers).toEqual(["Host", "a.test", "X-Request-Id", "abc", "X-Forwarded-For", "192.0.2.9", "X-Forwarded-Proto", "http", "X-Forwarded-Host", "a.test"]);
  });

  it.each([
    [["Content-Length", "0"], false],
    [["Content-Length", "12"], true],
    [["Transfer-Encoding", "chunked"], true],
    [[], false],
  ])("sees whether a body follows: %j → %s", (raw, hasBody) => {
    expect(upstreamRequestHeaders(raw, fwd, false).hasBody).toBe(hasBody);
  });
});

describe("clientResponseHeaders", () => {
  it("drops hop-by-hop fields and Transfer-Encoding", () => {
    expect(
      clientResponseHeaders(["Content-Type", "text/plain", "Transfer-Encoding", "chunked", "Connection", "close, X-Internal", "X-Internal", "1", "Set-Cookie", "a=1", "Set-Cookie", "b=2"]),
    ).toEqual(["Content-Type", "text/plain", "Set-Cookie", "a=1", "Set-Cookie", "b=2"]);
  });
});

describe("clientAddress", () => {
  it("unmaps IPv4-mapped IPv6 addresses only", () => {
    expect(clientAddress("::ffff:127.0.0.1")).toBe("127.0.0.1");
    expect(clientAddress("::1")).toBe("::1");
    expect(clientAddress(undefined)).toBe("unknown");
  });
});
