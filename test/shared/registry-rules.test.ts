/** Table tests of the registry client's pure parts: references, challenges, allow lists, retries, platforms, ports. */
import { describe, expect, it } from "vitest";
import { registryListed, parseIp } from "../../shared/registry/allow-list";
import { parseChallenges, pickChallenge } from "../../shared/registry/challenge";
import { parseExposedPorts } from "../../shared/registry/documents";
import { RegistryError } from "../../shared/registry/errors";
import { choosePlatform, platformForNodeArch } from "../../shared/registry/platform";
import { displayReference, formatReference, parseReference } from "../../shared/registry/reference";
import { DEFAULT_RETRY, parseRetryAfter, retryDelay } from "../../shared/registry/retry";
import { registrySchemes } from "../../shared/registry/session";

const HEX = "a".repeat(64);

describe("parseReference", () => {
  it.each([
    ["nginx", "registry-1.docker.io/library/nginx:latest", "library/nginx:latest"],
    ["nginx:1.25", "registry-1.docker.io/library/nginx:1.25", "library/nginx:1.25"],
    ["bitnami/nginx", "registry-1.docker.io/bitnami/nginx:latest", "bitnami/nginx:latest"],
    ["docker.io/nginx", "registry-1.docker.io/library/nginx:latest", "library/nginx:latest"],
    ["index.docker.io/library/nginx:x", "registry-1.docker.io/library/nginx:x", "library/nginx:x"],
    ["localhost/app", "localhost/app:latest", "localhost/app:latest"],
    ["localhost:5000/team/app:v1.2", "localhost:5000/team/app:v1.2", "localhost:5000/team/app:v1.2"],
    ["127.0.0.1:5000/app", "127.0.0.1:5000/app:latest", "127.0.0.1:5000/app:latest"],
    ["ghcr.io/org/sub/app:main", "ghcr.io/org/sub/app:main", "ghcr.io/org/sub/app:main"],
    ["Registry.Example.com/app", "registry.example.com/app:latest", "registry.example.com/app:latest"],
    [`reg.io/app@sha256:${HEX}`, `reg.io/app@sha256:${HEX}`, `reg.io/app@sha256:${HEX}`],
    [`reg.io/app:1@sha256:${HEX}`, `reg.io/app:1@sha256:${HEX}`, `reg.io/app:1@sha256:${HEX}`],
    ["[::1]:5000/app", "[::1]:5000/app:latest", "[::1]:5000/app:latest"],
    ["my_org/my-app__x", "registry-1.docker.io/my_org/my-app__x:latest", "my_org/my-app__x:latest"],
  ])("%s → %s", (input, canonical, display) => {
    const r = parseReference(input);
    expect(formatReference(r)).toBe(canonical);
    expect(displayReference(r)).toBe(display);
  });

  it.each([
    ["", /empty/],
    ["   ", /empty/],
    ["docker://nginx", /without a scheme/],
    ["Nginx", /lowercase/],
    ["reg.io/App", /lowercase/],
    ["reg.io//app", /empty path component/],
    ["reg.io/app:", /not a valid tag/],
    ["reg.io/app:-bad", /not a valid tag/],
    [`reg.io/app:${"t".repeat(129)}`, /not a valid tag/],
    ["reg.io/app@sha256:abc", /64 lowercase hex/],
    [`reg.io/app@md5:${HEX}`, /only sha256/],
    ["reg.io:99999/app", /out of range/],
    ["reg.io/a..b", /not a valid repository path component/],
    ["nginx latest", /whitespace/],
    [`reg.io/${"a".repeat(256)}`, /longer than 255/],
  ])("refuses %j", (input, why) => {
    let err: unknown;
    try { parseReference(input); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(RegistryError);
    expect((err as RegistryError).code).toBe("invalid_reference");
    expect((err as RegistryError).message).toMatch(why);
  });
});

describe("parseChallenges", () => {
  it("keeps commas inside quoted values and reads several challenges", () => {
    expect(parseChallenges('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push"')).toEqual([
      { scheme: "bearer", params: { realm: "https://auth.docker.io/token", service: "registry.docker.io", scope: "repository:samalba/my-app:pull,push" } },
    ]);
    const many = parseChallenges('Negotiate abc==, Basic realm="r", Bearer realm="https://a/t", error="insufficient_scope"');
    expect(many.map((c) => c.scheme)).toEqual(["negotiate", "basic", "bearer"]);
    expect(many[2]!.params).toEqual({ realm: "https://a/t", error: "insufficient_scope" });
    expect(pickChallenge(many)!.scheme).toBe("bearer");
    expect(pickChallenge(parseChallenges('Basic realm="x"'))!.scheme).toBe("basic");
    expect(pickChallenge(parseChallenges("Negotiate"))).toBeUndefined();
    expect(parseChallenges(null)).toEqual([]);
    expect(parseChallenges('Basic realm="a \\"quoted\\" name"')[0]!.params.realm).toBe('a "quoted" name');
  });
});

describe("registryListed", () => {
  it.each([
    ["reg.local:5000", ["reg.local:5000"], true],
    ["reg.local:5000", ["reg.local"], true],
    ["reg.local:5000", ["reg.local:5001"], false],
    ["REG.local", ["reg.LOCAL"], true],
    ["10.1.2.3:5000", ["10.0.0.0/8"], true],
    ["11.1.2.3:5000", ["10.0.0.0/8"], false],
    ["192.168.1.20", ["192.168.1.16/28"], true],
    ["192.168.1.40", ["192.168.1.16/28"], false],
    ["127.0.0.1:5000", ["127.0.0.1"], true],
    ["127.0.0.1:5000", ["127.0.0.1:5000"], true],
    ["reg.local:5000", ["10.0.0.0/8"], false],
    ["[::1]:5000", ["::1"], true],
    ["[fd00::5]:443", ["fd00::/8"], true],
    ["[fe80::5]:443", ["fd00::/8"], false],
    ["[::ffff:10.0.0.1]:5000", ["::ffff:10.0.0.0/104"], true],
    ["reg.local", [], false],
    ["reg.local", ["", "  "], false],
    ["10.0.0.1", ["10.0.0.0/33"], false],
  ])("%s in %j → %s", (host, list, expected) => {
    expect(registryListed(host, list)).toBe(expected);
  });

  it("parses IPs and rejects names", () => {
    expect(parseIp("1.2.3.4")).toEqual([1, 2, 3, 4]);
    expect(parseIp("256.1.1.1")).toBeNull();
    expect(parseIp("::1")).toEqual([...Array(15).fill(0), 1]);
    expect(parseIp("reg.local")).toBeNull();
    expect(parseIp("1::2::3")).toBeNull();
  });

  it("chooses schemes by the insecure list and what the runtime can do", () => {
    expect(registrySchemes("ghcr.io", ["10.0.0.0/8"], { canSkipTlsVerify: true })).toEqual(["https"]);
    expect(registrySchemes("10.0.0.9:5000", ["10.0.0.0/8"], { canSkipTlsVerify: true })).toEqual(["https", "http"]);
    expect(registrySchemes("10.0.0.9:5000", ["10.0.0.0/8"], { canSkipTlsVerify: false })).toEqual(["http"]);
  });
});

describe("retries", () => {
  const err = (code: RegistryError["code"], retryAfterSeconds?: number) => new RegistryError(code, "x", { retryAfterSeconds });
  const policy = { ...DEFAULT_RETRY, retries: 3, baseDelayMs: 100, maxDelayMs: 300, maxRetryAfterMs: 10_000 };
  it.each([
    [0, err("unreachable"), 100],
    [1, err("timeout"), 200],
    [2, err("unreachable"), 300],
    [3, err("unreachable"), null],
    [0, err("rate_limited", 5), 5000],
    [0, err("rate_limited", 11), null],
    [1, err("rate_limited"), 200],
    [0, err("not_found"), null],
    [0, err("unauthorized"), null],
    [0, err("digest_mismatch"), null],
  ])("attempt %i after %o → %s", (attempt, e, delay) => {
    expect(retryDelay(attempt, e, policy)).toBe(delay);
  });

  it("reads Retry-After as seconds or an HTTP date", () => {
    const now = new Date("2026-11-27T12:00:00Z");
    expect(parseRetryAfter("30", now)).toBe(30);
    expect(parseRetryAfter("Fri, 27 Nov 2026 12:01:00 GMT", now)).toBe(60);
    expect(parseRetryAfter("Fri, 27 Nov 2026 11:00:00 GMT", now)).toBe(0);
    expect(parseRetryAfter("soon", now)).toBeUndefined();
    expect(parseRetryAfter(null, now)).toBeUndefined();
  });
});

describe("platforms and ports", () => {
  const entries = [
    { digest: "sha256:arm", platform: { os: "linux", architecture: "arm64", variant: "v8" } },
    { digest: "sha256:att", platform: { os: "unknown", architecture: "unknown" }, annotations: { "vnd.docker.reference.type": "attestation-manifest" } },
    { digest: "sha256:amd", platform: { os: "linux", architecture: "amd64" } },
    { digest: "sha256:amd2", platform: { os: "linux", architecture: "amd64" } },
    { digest: "sha256:v6", platform: { os: "linux", architecture: "arm", variant: "v6" } },
    { digest: "sha256:v7", platform: { os: "linux", architecture: "arm", variant: "v7" } },
  ];
  it("takes the first match, honours variants, skips attestations", () => {
    expect(choosePlatform(entries, { os: "linux", architecture: "amd64" }, "x").digest).toBe("sha256:amd");
    expect(choosePlatform(entries, { os: "linux", architecture: "arm64" }, "x").digest).toBe("sha256:arm");
    expect(choosePlatform(entries, { os: "linux", architecture: "arm", variant: "v7" }, "x").digest).toBe("sha256:v7");
    expect(() => choosePlatform(entries, { os: "unknown", architecture: "unknown" }, "x")).toThrow(/no unknown\/unknown/);
    expect(() => choosePlatform([], { os: "linux", architecture: "amd64" }, "Image y")).toThrow(/Image y has no linux\/amd64 image \(it offers no runnable platform\)/);
  });

  it("maps Node's arch to OCI platforms", () => {
    expect(platformForNodeArch("x64")).toEqual({ os: "linux", architecture: "amd64" });
    expect(platformForNodeArch("arm64")).toEqual({ os: "linux", architecture: "arm64" });
    expect(platformForNodeArch("arm")).toEqual({ os: "linux", architecture: "arm", variant: "v7" });
  });

  it("parses exposed ports as CF's builder orders them", () => {
    expect(parseExposedPorts(["8080/udp", "8080/tcp", "80", "443/TCP", "5000/sctp", "junk", "0/tcp", "70000/tcp", "80/tcp"])).toEqual([
      { port: 80, protocol: "tcp" }, { port: 443, protocol: "tcp" }, { port: 8080, protocol: "tcp" }, { port: 8080, protocol: "udp" },
    ]);
  });
});
