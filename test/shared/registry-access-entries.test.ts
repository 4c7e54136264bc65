/** Validation and canonical spelling of the admin's registry list entries. */
import { describe, expect, it } from "vitest";
import { formatIp, parseCellOnlyEntry, parseInsecureEntry } from "../../shared/registry-access/entries";
import { parseIp, registryListed } from "../../shared/registry/allow-list";

const ok = (entry: string) => ({ ok: true, entry });

describe("insecure registry entries", () => {
  it.each([
    ["registry.local:5000", "registry.local:5000"],
    ["REGISTRY.Local:5000", "registry.local:5000"],
    ["localhost:5000", "localhost:5000"],
    [" 10.0.0.5 ".trim(), "10.0.0.5"],
    ["10.0.0.5:5000", "10.0.0.5:5000"],
    ["0.0.0.0/0", "0.0.0.0/0"],
    ["172.16.0.0/12", "172.16.0.0/12"],
    ["::1", "::1"],
    ["[::1]", "::1"],
    ["[0:0:0:0:0:0:0:1]:5000", "[::1]:5000"],
    ["2001:DB8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
    ["2001:db8:0:0:0:0:2:1", "2001:db8::2:1"],
    ["2001:db8::", "2001:db8::"],
    ["1:0:0:2:0:0:0:3", "1:0:0:2::3"],
    ["1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"],
    ["1:0:2:3:4:5:6:7", "1:0:2:3:4:5:6:7"],
    ["::ffff:10.1.2.3", "::ffff:a01:203"],
    ["fd00::/8", "fd00::/8"],
    ["::/0", "::/0"],
  ])("accepts %s as %s", (raw, canonical) => {
    expect(parseInsecureEntry(raw)).toEqual(ok(canonical));
  });

  it.each([
    ["http://reg:5000", "must not have a scheme"],
    ["reg", "is not host:port"],
    ["reg:", "invalid port"],
    ["reg:05000", "invalid port"],
    ["reg:65536", "invalid port"],
    ["-reg:5000", "invalid host name"],
    ["reg-.local:5000", "invalid host name"],
    [`${"a".repeat(64)}.local:5000`, "invalid host name"],
    ["1.2.3:5000", "invalid host name"],
    ["01.2.3.4", "is not host:port"],
    ["1.2.3.4.5", "is not host:port"],
    ["10.0.0.0/8/8", "is not a CIDR range"],
    ["10.0.0.0/08", "invalid prefix length"],
    ["10.1.0.0/8", "did you mean 10.0.0.0/8?"],
    ["fd00::1/129", "invalid prefix length (0-128)"],
    ["1:2:3:4:5:6:7:8:9", "is not host:port"],
    ["fe80::1%eth0", "is not host:port"],
    ["[fe80::1%eth0]:5000", "invalid IPv6 address"],
    ["[10.0.0.1]:5000", "invalid IPv6 address"],
  ])("refuses %s (%s)", (raw, text) => {
    const r = parseInsecureEntry(raw);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toContain(text);
  });
});

describe("cell-only registry entries", () => {
  it("takes host:port only", () => {
    expect(parseCellOnlyEntry("Reg.Internal:443")).toEqual(ok("reg.internal:443"));
    expect(parseCellOnlyEntry("[2001:db8::1]:5000")).toEqual(ok("[2001:db8::1]:5000"));
    for (const raw of ["10.0.0.1", "10.0.0.0/8", "reg.internal", "https://reg:1"]) expect(parseCellOnlyEntry(raw).ok).toBe(false);
  });
});

describe("canonical entries work with the registry matcher", () => {
  it("formats what parseIp reads", () => {
    for (const ip of ["fd00::1", "::", "1::", "10.1.2.3", "2001:db8::ff00:42:8329"]) expect(formatIp(parseIp(ip)!)).toBe(ip);
  });

  it("stored entries match the registries they name", () => {
    const list = ["registry.local:5000", "10.0.0.0/8", "[::1]:5000", "fd00::1"].map((r) => {
      const p = parseInsecureEntry(r);
      if (!p.ok) throw new Error(p.error);
      return p.entry;
    });
    expect(registryListed("Registry.Local:5000", list)).toBe(true);
    expect(registryListed("registry.local:5001", list)).toBe(false);
    expect(registryListed("10.200.0.1:443", list)).toBe(true);
    expect(registryListed("[::1]:5000", list)).toBe(true);
    expect(registryListed("[fd00::1]:8443", list)).toBe(true);
    expect(registryListed("11.0.0.1:5000", list)).toBe(false);
  });
});
