/** access-line.ts: HAProxy's access line → the router's AccessRecord, the same fields the Node path logs and ships. */
import { describe, expect, it } from "vitest";
import { parseAccessLine } from "../../agent/router/haproxy/access-line";

const AT = 10_000;

function line(fields: Record<string, string>): string {
  const f = {
    method: "GET", uri: "/p?secret=1", version: "HTTP/1.1", status: "200", ip: "127.0.0.1", port: "8080", retries: "0", total: "12",
    bytesIn: "120", bytesOut: "180", clientIp: "192.0.2.9", clientPort: "41000", state: "----", error: "-",
    captures: "{a.apps.test|req-1|https://ref.example/|curl/8.0|5||http}",
    ...fields,
  };
  return ["berth-access", f.method, f.uri, f.version, f.status, f.ip, f.port, f.retries, f.total, f.bytesIn, f.bytesOut, f.clientIp, f.clientPort, f.state, f.error, f.captures].join("\t");
}

describe("parseAccessLine", () => {
  it("reads an answered request, timed back from when the line came", () => {
    expect(parseAccessLine(line({}), AT)).toEqual({
      host: "a.apps.test",
      method: "GET",
      url: "/p?secret=1",
      status: 200,
      upstream: "127.0.0.1:8080",
      attempts: 1,
      startedAt: AT - 12,
      now: AT,
      requestId: "req-1",
      error: undefined,
      protocol: "HTTP/1.1",
      bytesReceived: 5,
      bytesSent: 180,
      referer: "https://ref.example/",
      userAgent: "curl/8.0",
      remoteAddress: "192.0.2.9:41000",
      forwardedFor: "192.0.2.9",
      forwardedProto: "http",
    });
  });

  it("counts a redispatched retry as another attempt", () => {
    expect(parseAccessLine(line({ retries: "+2" }), AT)).toMatchObject({ attempts: 3 });
  });

  it.each([
    ["SC--", "502", "endpoint_failure: ECONNREFUSED"],
    ["sC--", "502", "endpoint_failure: ETIMEDOUT"],
    ["sH--", "504", "endpoint_timeout: ETIMEDOUT"],
    ["SH--", "502", "endpoint_failure: ECONNRESET"],
    ["PH--", "502", "endpoint_failure: invalid_response"],
    ["SD--", "200", "upstream_aborted"],
  ])("names the failure of termination state %s", (state, status, error) => {
    expect(parseAccessLine(line({ state, status }), AT)).toMatchObject({ status: Number(status), error });
  });

  it("takes the router's own error for a page HAProxy answered itself, with no upstream", () => {
    expect(parseAccessLine(line({ state: "LR--", status: "404", ip: "-", port: "-", error: "unknown_route" }), AT)).toMatchObject({ status: 404, upstream: null, attempts: 0, error: "unknown_route" });
  });

  it("says 499 when the client left before any answer", () => {
    expect(parseAccessLine(line({ state: "CH--", status: "-1" }), AT)).toMatchObject({ status: 499, error: "client_closed" });
  });

  it("brackets an IPv6 upstream and appends the client to what a trusted proxy forwarded", () => {
    expect(parseAccessLine(line({ ip: "::1", captures: "{a.apps.test|r|||||https}" }), AT)).toMatchObject({ upstream: "[::1]:8080", referer: undefined, userAgent: undefined });
    expect(parseAccessLine(line({ captures: "{a.apps.test|r||||203.0.113.7|https}" }), AT)).toMatchObject({ forwardedFor: "203.0.113.7, 192.0.2.9", forwardedProto: "https" });
  });

  it("decodes what HAProxy encoded in a captured field, so a client's tab or bar cannot shift the fields", () => {
    expect(parseAccessLine(line({ captures: "{a.apps.test|id#7Cx||||#09tab#23|http}" }), AT)).toMatchObject({ requestId: "id|x", forwardedFor: "\ttab#, 192.0.2.9" });
  });

  it("ignores HAProxy's other messages, lines with a field too many or too few, and a broken capture block", () => {
    expect(parseAccessLine("Server b0/s1 is UP/READY (leaving forced maintenance).", AT)).toBeNull();
    expect(parseAccessLine(`${line({})}\textra`, AT)).toBeNull();
    expect(parseAccessLine(line({}).split("\t").slice(0, 5).join("\t"), AT)).toBeNull();
    expect(parseAccessLine(line({ captures: "{a|b}" }), AT)).toBeNull();
  });
});
