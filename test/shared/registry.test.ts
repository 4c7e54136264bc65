/**
 * The shared registry client against a real registry (docker-registry on
 * loopback holding the fixtures): anonymous, Basic, bearer tokens, TLS with a
 * CA and unverified, indexes and platforms, Docker and OCI media types, and
 * every failure a user can meet, each with its code and message. Fault
 * servers (429, tampering, redirects) are small proxies in front of the real
 * registry (test/support/registry-proxy.ts); nothing is mocked.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createRegistryFetch } from "../../agent/images/registry-fetch";
import { RegistryError, type RegistryErrorCode } from "../../shared/registry/errors";
import { parseReference } from "../../shared/registry/reference";
import { resolveImage, type ResolveOptions } from "../../shared/registry/resolve";
import { blobRequest, openRegistrySession, registrySchemes } from "../../shared/registry/session";
import { sha256Digest } from "../../shared/registry/digest";
import { BASE_ENV, FIXTURES, MULTI_ARCH, type FixtureConfig, type FixtureName } from "../fixtures/images";
import { startHangingServer, startRegistry, stoppedAddress, type HangingServer, type TestRegistry } from "../support/registry";
import { corruptJson, startRegistryProxy, type RegistryProxy } from "../support/registry-proxy";

const { host, storageDir } = inject("registry");
/** Plain HTTP on loopback, quick retries: what every test starts from. */
const plain: ResolveOptions = { fetch, schemes: ["http"], listedRegistries: ["127.0.0.1"], retry: { retries: 1, baseDelayMs: 1 } };

async function failure(p: Promise<unknown>): Promise<RegistryError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(RegistryError);
  return err as RegistryError;
}

async function expectCode(p: Promise<unknown>, code: RegistryErrorCode, message?: RegExp) {
  const err = await failure(p);
  expect(err.code, err.message).toBe(code);
  if (message) expect(err.message).toMatch(message);
  return err;
}

describe("anonymous registry", () => {
  it.each(Object.keys(FIXTURES) as FixtureName[])("resolves %s to its config", async (name) => {
    const image = await resolveImage(`${host}/${name}`, plain);
    const f: FixtureConfig = FIXTURES[name];
    expect(image.ref).toBe(`${host}/${name}:latest`);
    expect(image.config.entrypoint).toEqual(f.Entrypoint ?? []);
    expect(image.config.cmd).toEqual(f.Cmd ?? []);
    expect(image.config.user).toBe(f.User ?? "");
    expect(image.config.workdir).toBe(f.WorkingDir ?? "");
    expect(image.config.env).toEqual([...BASE_ENV, ...(f.Env ?? [])]);
    expect(image.index_digest).toBeNull();
    // The pinned digest is the one the registry itself reports for the tag.
    const head = await fetch(`http://${host}/v2/${name}/manifests/latest`, { method: "HEAD", headers: { accept: "application/vnd.oci.image.manifest.v1+json" } });
    expect(image.manifest_digest).toBe(head.headers.get("docker-content-digest"));
    for (const l of image.layers) {
      expect(l.media_type).toBe("application/vnd.oci.image.layer.v1.tar+gzip");
      expect(l.diff_id).toMatch(/^sha256:[0-9a-f]{64}$/);
    }
  });

  it("sorts ports ascending, tcp before udp, and keeps UDP", async () => {
    const image = await resolveImage(`${host}/ports:latest`, plain);
    expect(image.config.exposed_ports).toEqual([
      { port: 53, protocol: "tcp" }, { port: 53, protocol: "udp" },
      { port: 8081, protocol: "tcp" }, { port: 8081, protocol: "udp" }, { port: 9090, protocol: "tcp" },
    ]);
    expect((await resolveImage(`${host}/no-ports`, plain)).config.exposed_ports).toEqual([]);
  });

  it("lists every layer of a multi-layer image with its diff_id", async () => {
    expect((await resolveImage(`${host}/layers`, plain)).layers).toHaveLength(4);
    expect((await resolveImage(`${host}/httpd`, plain)).layers).toHaveLength(2);
  });

  it("resolves Docker schema 2 manifests", async () => {
    const image = await resolveImage(`${host}/docker-v2s2`, plain);
    expect(image.config.entrypoint).toEqual(FIXTURES["entrypoint-cmd"].Entrypoint);
    expect(image.layers[0]!.media_type).toBe("application/vnd.docker.image.rootfs.diff.tar.gzip");
  });

  it("keeps zstd layers with the same diff_ids as their gzip twin", async () => {
    const [gz, zst] = await Promise.all([resolveImage(`${host}/httpd`, plain), resolveImage(`${host}/httpd-zstd`, plain)]);
    expect(zst.layers.map((l) => l.media_type)).toEqual(["application/vnd.oci.image.layer.v1.tar+zstd", "application/vnd.oci.image.layer.v1.tar+zstd"]);
    expect(zst.layers.map((l) => l.diff_id)).toEqual(gz.layers.map((l) => l.diff_id));
  });

  it.each(["multi-arch", "multi-arch-docker"])("picks linux/amd64 from the index %s and keeps the index digest", async (name) => {
    const image = await resolveImage(`${host}/${name}`, plain);
    expect(image.config.cmd).toEqual(MULTI_ARCH.amd64.Cmd);
    expect(image.index_digest).toMatch(/^sha256:/);
    expect(image.manifest_digest).not.toBe(image.index_digest);
    const arm = await resolveImage(`${host}/${name}`, { ...plain, platform: { os: "linux", architecture: "arm64" } });
    expect(arm.config.cmd).toEqual(MULTI_ARCH.arm64.Cmd);
    expect(arm.index_digest).toBe(image.index_digest);
  });

  it("names the platforms an index offers when the wanted one is missing", async () => {
    await expectCode(resolveImage(`${host}/multi-arch`, { ...plain, platform: { os: "linux", architecture: "s390x" } }),
      "not_found", /no linux\/s390x image \(it offers linux\/arm64\/v8, linux\/amd64\)/);
  });

  it("resolves a reference pinned by digest, and refuses an unknown digest", async () => {
    const byTag = await resolveImage(`${host}/httpd`, plain);
    const pinned = await resolveImage(`${host}/httpd@${byTag.manifest_digest}`, plain);
    expect(pinned.manifest_digest).toBe(byTag.manifest_digest);
    expect(pinned.ref).toBe(`${host}/httpd@${byTag.manifest_digest}`);
    await expectCode(resolveImage(`${host}/httpd@sha256:${"0".repeat(64)}`, plain), "not_found", /has no digest sha256:0+/);
  });

  it("says which tag is unknown", async () => {
    await expectCode(resolveImage(`${host}/httpd:no-such-tag`, plain), "not_found", /httpd has no tag no-such-tag/);
    // distribution 2.8 answers MANIFEST_UNKNOWN for an unknown repository too.
    await expectCode(resolveImage(`${host}/no-such-repo:latest`, plain), "not_found", /no-such-repo has no tag latest/);
  });

  it("refuses a malformed reference before any request", async () => {
    await expectCode(resolveImage(`${host}/Upper/Case`, plain), "invalid_reference", /lowercase/);
  });

  it("caps manifest and config sizes", async () => {
    await expectCode(resolveImage(`${host}/httpd`, { ...plain, maxManifestBytes: 100 }), "too_large", /manifest .* larger than the 100 bytes/);
    await expectCode(resolveImage(`${host}/httpd`, { ...plain, maxConfigBytes: 100 }), "too_large", /config .* more than the 100 accepted/);
  });

  it("falls back from https to plain http when the registry is insecure-listed on a cell", async () => {
    const schemes = registrySchemes(host, ["127.0.0.1"], { canSkipTlsVerify: true });
    expect(schemes).toEqual(["https", "http"]);
    const image = await resolveImage(`${host}/httpd`, { fetch, schemes, listedRegistries: ["127.0.0.1"] });
    expect(image.layers).toHaveLength(2);
  });

  it("opens a session whose blobRequest streams a layer that hashes to its digest", async () => {
    const image = await resolveImage(`${host}/httpd`, plain);
    const layer = image.layers[1]!;
    const session = await openRegistrySession(parseReference(`${host}/httpd`), plain);
    const res = await blobRequest(session, layer.digest);
    expect(await sha256Digest(new Uint8Array(await res.arrayBuffer()))).toBe(layer.digest);
    await expectCode(blobRequest(session, `sha256:${"1".repeat(64)}`), "not_found", /Blob sha256:1+ .* is not in the registry/);
  });
});

describe("authenticated registries", () => {
  let basic: TestRegistry, token: TestRegistry, tokenAnon: TestRegistry;
  beforeAll(async () => {
    [basic, token, tokenAnon] = await Promise.all([
      startRegistry({ storageDir, auth: { kind: "basic", username: "alice", password: "s3cret" } }),
      startRegistry({ storageDir, auth: { kind: "token", username: "bob", password: "hunter2" } }),
      startRegistry({ storageDir, auth: { kind: "token", username: "bob", password: "hunter2", anonymousPull: true } }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([basic, token, tokenAnon].map((r) => r?.stop()));
  });

  it("Basic: pulls with the right password, says which failure it is otherwise", async () => {
    const image = await resolveImage(`${basic.host}/httpd`, { ...plain, credentials: { username: "alice", password: "s3cret" } });
    expect(image.layers).toHaveLength(2);
    await expectCode(resolveImage(`${basic.host}/httpd`, { ...plain, credentials: { username: "alice", password: "wrong" } }),
      "unauthorized", /refused the username and password/);
    await expectCode(resolveImage(`${basic.host}/httpd`, plain), "unauthorized", /requires a username and password/);
  });

  it("bearer: fetches a pull token for the repository with the credentials", async () => {
    const image = await resolveImage(`${token.host}/user-name`, { ...plain, credentials: { username: "bob", password: "hunter2" } });
    expect(image.config.user).toBe("app");
    expect(token.tokenIssuer!.requests).toContainEqual({ scopes: ["repository:user-name:pull"], service: "berth-test-registry", user: "bob" });
    await expectCode(resolveImage(`${token.host}/user-name`, { ...plain, credentials: { username: "bob", password: "nope" } }),
      "unauthorized", /refused the username and password/);
    // No credentials: the issuer grants no access and the registry says 401 insufficient_scope.
    await expectCode(resolveImage(`${token.host}/user-name`, plain), "unauthorized", /requires a username and password/);
  });

  it("bearer: anonymous pull tokens, as Docker Hub gives for public images", async () => {
    const image = await resolveImage(`${tokenAnon.host}/multi-arch`, plain);
    expect(image.config.cmd).toEqual(MULTI_ARCH.amd64.Cmd);
    expect(tokenAnon.tokenIssuer!.requests.every((r) => r.user === null)).toBe(true);
  });

  it("drops Authorization when a blob GET is redirected to another host", async () => {
    // The "CDN": another origin that serves the blob anonymously from the fixture registry.
    const cdn = await startRegistryProxy(`http://${host}`);
    const front = await startRegistryProxy(`http://${basic.host}`, (r) =>
      r.path.includes("/blobs/") ? { redirect: `${cdn.url}${r.path}` } : undefined);
    try {
      const image = await resolveImage(`${front.host}/httpd`, { ...plain, credentials: { username: "alice", password: "s3cret" } });
      expect(image.layers).toHaveLength(2);
      expect(front.requests.some((r) => r.path.includes("/manifests/") && r.authorization?.startsWith("Basic "))).toBe(true);
      const cdnBlobs = cdn.requests.filter((r) => r.path.includes("/blobs/"));
      expect(cdnBlobs.length).toBeGreaterThan(0);
      expect(cdnBlobs.every((r) => r.authorization === undefined)).toBe(true);
    } finally {
      await Promise.all([front.stop(), cdn.stop()]);
    }
  });
});

describe("TLS registries", () => {
  let tls: TestRegistry;
  beforeAll(async () => {
    tls = await startRegistry({ storageDir, tls: true });
  });
  afterAll(() => tls?.stop());

  it("verifies the registry with the admin's CA", async () => {
    // A loopback registry with a private CA is listed as reachable from cells only.
    const rf = createRegistryFetch({ trustedCaCertificates: [tls.caPem!], cellOnlyRegistries: [tls.host] });
    try {
      const image = await resolveImage(`${tls.host}/httpd`, { fetch: rf.fetch, listedRegistries: [tls.host], retry: { retries: 0 } });
      expect(image.layers).toHaveLength(2);
    } finally {
      await rf.close();
    }
  });

  it("refuses an unknown CA, and skips verification only for insecure-listed registries", async () => {
    const strict = createRegistryFetch();
    const insecure = createRegistryFetch({ insecureRegistries: [tls.host] });
    try {
      await expectCode(resolveImage(`${tls.host}/httpd`, { fetch: strict.fetch, listedRegistries: [tls.host], retry: { retries: 0 } }), "unreachable", /Cannot connect to https:\/\/127\.0\.0\.1/);
      const schemes = registrySchemes(tls.host, [tls.host], { canSkipTlsVerify: true });
      expect((await resolveImage(`${tls.host}/httpd`, { fetch: insecure.fetch, schemes, listedRegistries: [tls.host] })).layers).toHaveLength(2);
    } finally {
      await Promise.all([strict.close(), insecure.close()]);
    }
  });

  it("tells a plain-HTTP-only client that the registry speaks TLS", async () => {
    await expectCode(resolveImage(`${tls.host}/httpd`, { ...plain, retry: { retries: 0 } }), "tls_required", /speaks TLS/);
  });
});

describe("faults", () => {
  let proxies: RegistryProxy[] = [];
  let hanging: HangingServer;
  beforeAll(async () => {
    hanging = await startHangingServer();
  });
  afterAll(async () => {
    await Promise.all([hanging.stop(), ...proxies.map((p) => p.stop())]);
    proxies = [];
  });
  const proxy = async (rule: Parameters<typeof startRegistryProxy>[1]) => {
    const p = await startRegistryProxy(`http://${host}`, rule);
    proxies.push(p);
    return p;
  };

  it("waits out a 429's Retry-After, then succeeds", async () => {
    let limited = 0;
    const p = await proxy((r) => r.path.includes("/manifests/") && limited++ === 0
      ? { respond: { status: 429, headers: { "retry-after": "2" } } } : undefined);
    const waits: number[] = [];
    const image = await resolveImage(`${p.host}/httpd`, { ...plain, retry: { retries: 2 }, sleep: async (ms) => { waits.push(ms); } });
    expect(image.layers).toHaveLength(2);
    expect(waits).toEqual([2000]);
  });

  it("gives up with rate_limited and the Retry-After when the registry keeps refusing", async () => {
    const p = await proxy(() => ({ respond: { status: 429, headers: { "retry-after": "1" } } }));
    const waits: number[] = [];
    const err = await expectCode(resolveImage(`${p.host}/httpd`, { ...plain, retry: { retries: 2 }, sleep: async (ms) => { waits.push(ms); } }),
      "rate_limited", /rate-limiting pulls \(it asks to retry after 1 s\)/);
    expect(err.retryAfterSeconds).toBe(1);
    expect(waits).toEqual([1000, 1000]);
    // A wait longer than the policy allows is not waited for at all.
    const long = await proxy(() => ({ respond: { status: 429, headers: { "retry-after": "3600" } } }));
    waits.length = 0;
    await expectCode(resolveImage(`${long.host}/httpd`, { ...plain, retry: { retries: 2 }, sleep: async (ms) => { waits.push(ms); } }), "rate_limited");
    expect(waits).toEqual([]);
  });

  it("refuses a tampered config blob", async () => {
    const p = await proxy((r) => (r.path.includes("/blobs/") ? { tamper: corruptJson } : undefined));
    await expectCode(resolveImage(`${p.host}/httpd`, plain), "digest_mismatch", /config of .* does not match its digest/);
  });

  it("refuses a manifest that does not hash to the digest it was pinned by", async () => {
    const { manifest_digest } = await resolveImage(`${host}/httpd`, plain);
    const p = await proxy((r) => (r.path.includes("/manifests/") ? { tamper: (b) => Buffer.concat([b, Buffer.from(" ")]) } : undefined));
    await expectCode(resolveImage(`${p.host}/httpd@${manifest_digest}`, plain), "digest_mismatch", /manifest of .* does not match its digest/);
    await expectCode(resolveImage(`${p.host}/httpd`, plain), "digest_mismatch", /does not match the digest the registry announced/);
  });

  it("retries an address where nothing listens, then reports it unreachable", async () => {
    const waits: number[] = [];
    await expectCode(resolveImage(`${await stoppedAddress()}/httpd`, { ...plain, retry: { retries: 2, baseDelayMs: 10 }, sleep: async (ms) => { waits.push(ms); } }),
      "unreachable", /Cannot connect to http:\/\/127\.0\.0\.1:\d+/);
    expect(waits).toEqual([10, 20]);
  });

  it("times out a registry that never answers", async () => {
    await expectCode(resolveImage(`${hanging.host}/httpd`, { ...plain, requestTimeoutMs: 150, retry: { retries: 1, baseDelayMs: 1 } }),
      "timeout", /did not answer within 150 ms/);
  });

  it("stops at the overall budget, whatever the retries left", async () => {
    const started = Date.now();
    await expectCode(resolveImage(`${hanging.host}/httpd`, { ...plain, signal: AbortSignal.timeout(200), requestTimeoutMs: 10_000, retry: { retries: 5 } }),
      "timeout", /ran out of time/);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it("stopped by its owner for a reason of its own (an instance stopped), fails with that reason, not a timeout", async () => {
    const owner = new AbortController();
    const reason = new Error("the instance was stopped");
    setTimeout(() => owner.abort(reason), 100);
    await expect(resolveImage(`${hanging.host}/httpd`, { ...plain, signal: owner.signal, requestTimeoutMs: 10_000 })).rejects.toBe(reason);
    // A bare abort is still the budget's.
    const bare = new AbortController();
    setTimeout(() => bare.abort(), 100);
    await expectCode(resolveImage(`${hanging.host}/httpd`, { ...plain, signal: bare.signal, requestTimeoutMs: 10_000 }), "timeout", /ran out of time/);
  });

  it("reports a 5xx after its retries", async () => {
    const p = await proxy(() => ({ respond: { status: 503 } }));
    const waits: number[] = [];
    await expectCode(resolveImage(`${p.host}/httpd`, { ...plain, retry: { retries: 1, baseDelayMs: 5 }, sleep: async (ms) => { waits.push(ms); } }),
      "unreachable", /answered GET \/v2\/ with 503/);
    expect(waits).toEqual([5]);
  });

  it("refuses Docker schema 1 manifests with advice", async () => {
    const p = await proxy((r) => (r.path.includes("/manifests/")
      ? { respond: { status: 200, headers: { "content-type": "application/vnd.docker.distribution.manifest.v1+prettyjws" }, body: '{"schemaVersion":1,"name":"x","tag":"latest","fsLayers":[]}' } }
      : undefined));
    await expectCode(resolveImage(`${p.host}/httpd`, plain), "unsupported_media_type", /schema 1 .* push the image again/);
  });

  it("says the repository is unknown when the registry says NAME_UNKNOWN (Docker Hub, GHCR)", async () => {
    const p = await proxy((r) => (r.path.includes("/manifests/")
      ? { respond: { status: 404, headers: { "content-type": "application/json" }, body: '{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}' } }
      : undefined));
    await expectCode(resolveImage(`${p.host}/ghost`, plain), "not_found", /the repository ghost does not exist on 127\.0\.0\.1:\d+/);
  });

  it("refuses a server that is not a registry", async () => {
    const p = await proxy(() => ({ respond: { status: 404, body: "not here" } }));
    await expectCode(resolveImage(`${p.host}/httpd`, plain), "unreachable", /does not serve the registry API/);
  });
});
