/**
 * config.ts: the rendered configuration is one HAProxy itself accepts
 * (`haproxy -c`), for plain HTTP and with HTTPS, trusted proxies and servers.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { routerTimeoutsSchema } from "../../agent/router/config";
import { HOP_BY_HOP_LUA, renderHaproxyConfig, type HaproxySettings } from "../../agent/router/haproxy/config";

const dir = mkdtempSync(path.join(os.tmpdir(), "berth-haproxy-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function settings(overrides: Partial<HaproxySettings> = {}): HaproxySettings {
  const files = { socket: path.join(dir, "admin.sock"), routesMap: path.join(dir, "routes.map"), idleMap: path.join(dir, "idle.map"), stateMap: path.join(dir, "state.map"), lua: path.join(dir, "hop.lua") };
  for (const file of [files.routesMap, files.idleMap, files.stateMap]) writeFileSync(file, "");
  writeFileSync(files.lua, HOP_BY_HOP_LUA);
  return { listenHost: "127.0.0.1", listenPort: 8080, trustedProxies: [], maxAttempts: 3, maxTunnelsPerRoute: 1000, threads: 2, timeouts: routerTimeoutsSchema.parse({}), files, ...overrides };
}

/** `haproxy -c` on the text: throws with HAProxy's complaint when it refuses it. */
function check(config: string): void {
  const file = path.join(dir, "haproxy.cfg");
  writeFileSync(file, config);
  execFileSync("haproxy", ["-c", "-q", "-f", file], { stdio: ["ignore", "pipe", "pipe"] });
}

describe("renderHaproxyConfig", () => {
  it("renders a configuration HAProxy accepts, with each pool backend's servers", () => {
    const config = renderHaproxyConfig(settings({ trustedProxies: ["10.0.0.0/8", "192.0.2.7"] }), [[{ name: "s1", address: "127.0.0.1", port: 9001 }, { name: "s2", address: "::1", port: 9002 }], []]);
    expect(config).toContain("backend b0 from pool\n  server s1 127.0.0.1:9001\n  server s2 ipv6@::1:9002");
    expect(config).toContain("backend b1 from pool");
    expect(config).toContain("acl trusted src 10.0.0.0/8 192.0.2.7");
    expect(config).toContain("retries 2");
    check(config);
  });

  it("makes every router page with its X-Berth-Router-Error and the request's host and id", () => {
    const config = renderHaproxyConfig(settings(), []);
    for (const error of ["unknown_route", "no_endpoints", "table_not_loaded", "tunnel_limit", "endpoint_failure", "endpoint_timeout"]) {
      expect(config).toContain(`hdr X-Berth-Router-Error ${error}`);
    }
    expect(config).toContain("Requested route ('%[var(txn.host)]') does not exist.\\nRequest ID: %[var(txn.reqid)]\\n");
    check(config);
  });

  it("binds HTTPS from a crt-list, refusing unknown names without a default certificate", () => {
    const crtList = path.join(dir, "certs.list");
    writeFileSync(crtList, "");
    const base = settings();
    const config = renderHaproxyConfig({ ...base, tls: { port: 8443, strictSni: true }, files: { ...base.files, crtList } }, []);
    expect(config).toContain(`bind 127.0.0.1:8443 ssl crt-list ${crtList} strict-sni`);
  });
});
