/** The rule every registry fetch passes (shared/registry/targets.ts), as a table: no I/O. */
import { describe, expect, it } from "vitest";
import { inwardHostKind, listedRegistries, refusedTarget } from "../../shared/registry/targets";

describe("inwardHostKind", () => {
  it.each([
    ["127.0.0.1", "loopback"], ["127.9.9.9", "loopback"], ["localhost", "loopback"], ["LOCALHOST.", "loopback"], ["api.localhost", "loopback"],
    ["169.254.169.254", "link-local"], ["10.1.2.3", "private"], ["172.31.0.1", "private"], ["192.168.1.1", "private"],
    ["100.100.100.200", "carrier-private"], ["0.0.0.0", "this-host"], ["255.255.255.255", "multicast or reserved"],
    ["[::1]", "loopback"], ["[fe80::1]", "link-local"], ["[fd00::1]", "private"], ["[::]", "unspecified"],
    ["[::ffff:127.0.0.1]", "loopback"], ["[::ffff:a9fe:a9fe]", "link-local"], ["[64:ff9b::a9fe:a9fe]", "link-local"],
  ])("%s is %s", (host, kind) => {
    expect(inwardHostKind(host)).toBe(kind);
  });

  it.each(["8.8.8.8", "172.32.0.1", "192.169.0.1", "registry-1.docker.io", "[2606:4700::1111]", "169.255.0.1"])("%s is not inward", (host) => {
    expect(inwardHostKind(host)).toBeNull();
  });
});

describe("refusedTarget", () => {
  const listed = listedRegistries({ insecure_registries: ["10.0.0.0/8"], cell_only_registries: ["localhost:443", "127.0.0.1:5000"] });

  it("lets public hosts through, and inward ones only when listed", () => {
    expect(refusedTarget(new URL("https://registry-1.docker.io/v2/"), { listed: [] })).toBeNull();
    expect(refusedTarget(new URL("http://10.4.5.6:5000/v2/"), { listed })).toBeNull();
    expect(refusedTarget(new URL("http://127.0.0.1:5000/v2/"), { listed })).toBeNull();
    expect(refusedTarget(new URL("http://127.0.0.1:5001/v2/"), { listed })).toMatch(/127\.0\.0\.1:5001 is a loopback address/);
    expect(refusedTarget(new URL("http://169.254.169.254/latest"), { listed })).toMatch(/link-local/);
  });

  it("reads hosts as the URL parser does (hex, decimal, trailing dots)", () => {
    expect(refusedTarget(new URL("http://0x7f.1:5001/"), { listed: [] })).toMatch(/loopback/);
    expect(refusedTarget(new URL("http://2852039166/"), { listed: [] })).toMatch(/link-local/);
    expect(refusedTarget(new URL("http://localhost.:80/"), { listed: [] })).toMatch(/loopback/);
  });

  it("refuses https → http even to a listed host, and schemes other than http(s)", () => {
    expect(refusedTarget(new URL("http://127.0.0.1:5000/v2/"), { listed, from: new URL("https://reg.example/v2/") })).toMatch(/downgrade/);
    expect(refusedTarget(new URL("https://127.0.0.1:5000/v2/"), { listed, from: new URL("http://127.0.0.1:5000/v2/") })).toBeNull();
    expect(refusedTarget(new URL("file:///etc/passwd"), { listed })).toMatch(/file: URLs are not fetched/);
  });

  it("matches a host:port entry against a URL with the scheme's default port", () => {
    expect(refusedTarget(new URL("https://localhost/v2/"), { listed })).toBeNull();
    expect(refusedTarget(new URL("https://localhost:8443/v2/"), { listed })).toMatch(/loopback/);
  });
});
