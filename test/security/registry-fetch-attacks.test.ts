/**
 * Attacks on registry fetches (issue 15, item 7): a tenant names the image
 * and may run the registry, so it controls the first host, every redirect
 * and the token realm. Each test aims a fetch inward (an unlisted loopback
 * service standing in for the host's own services, or the cloud metadata
 * address) and shows the fetch is refused before anything is sent there and
 * that no error echoes what such a host would answer. The shared client runs
 * here on Node's fetch and on the cell's undici fetch; the Worker's run is in
 * test/security/worker/. Nothing here sends traffic beyond loopback: the
 * recording fetch refuses any other address itself (and fails the test).
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createRegistryFetch } from "../../agent/images/registry-fetch";
import { RegistryError } from "../../shared/registry/errors";
import { resolveImage, type ResolveOptions } from "../../shared/registry/resolve";
import { startInwardService, type InwardService } from "../support/inward-service";
import { INWARD_SECRET } from "../support/provided";
import { startRegistryProxy, type RegistryProxy } from "../support/registry-proxy";
import { makeTestCa } from "../support/tls";

const { host } = inject("registry");
let inward: InwardService;
const proxies: RegistryProxy[] = [];

beforeAll(async () => {
  inward = await startInwardService();
});
afterAll(async () => {
  await Promise.all([inward.stop(), ...proxies.map((p) => p.stop())]);
});

/** A registry run by the attacker: the fixture registry behind a proxy applying `rule`. */
async function hostileRegistry(rule: Parameters<typeof startRegistryProxy>[1]): Promise<RegistryProxy> {
  const p = await startRegistryProxy(`http://${host}`, rule);
  proxies.push(p);
  return p;
}

/** Node's fetch, recording every URL asked for and sending only to loopback (this machine's network rule). */
function recordingFetch() {
  const asked: string[] = [];
  const f = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = input instanceof Request ? input.url : input.toString();
    asked.push(url);
    if (new URL(url).hostname !== "127.0.0.1") throw new TypeError(`test network: ${url} is not loopback`);
    return fetch(url, init);
  }) as typeof fetch;
  return { asked, fetch: f };
}

/** The admin listed only the attacker's registry (it is on loopback here, as every test server is). */
const only = (registry: RegistryProxy, f: typeof fetch = fetch): ResolveOptions =>
  ({ fetch: f, schemes: ["http"], listedRegistries: [registry.host], retry: { retries: 0 } });

async function refused(p: Promise<unknown>): Promise<RegistryError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(RegistryError);
  const e = err as RegistryError;
  expect(e.code, e.message).toBe("refused_target");
  expect(e.message).not.toContain(INWARD_SECRET);
  return e;
}

describe("registry fetches cannot be aimed inward", () => {
  it("a registry that redirects a manifest to an unlisted loopback service is refused, and the service sees nothing", async () => {
    const before = inward.requests.length;
    const evil = await hostileRegistry((r) => (r.path.includes("/manifests/") ? { redirect: `${inward.url}/admin/secrets` } : undefined));
    const err = await refused(resolveImage(`${evil.host}/httpd`, only(evil)));
    expect(err.message).toMatch(/127\.0\.0\.1:\d+ is a loopback address/);
    expect(inward.requests.length).toBe(before);
  });

  it("a registry that redirects a blob to the cloud metadata address (169.254.169.254) is refused before any request", async () => {
    const evil = await hostileRegistry((r) => (r.path.includes("/blobs/") ? { redirect: "http://169.254.169.254/latest/meta-data/iam/security-credentials/" } : undefined));
    const rec = recordingFetch();
    const err = await refused(resolveImage(`${evil.host}/httpd`, only(evil, rec.fetch)));
    expect(err.message).toMatch(/169\.254\.169\.254 is a link-local address/);
    expect(rec.asked.filter((u) => !u.startsWith(evil.url))).toEqual([]);
  });

  it("a registry that redirects to the metadata address written as IPv4-mapped IPv6 is refused", async () => {
    const evil = await hostileRegistry((r) => (r.path.includes("/manifests/") ? { redirect: "http://[::ffff:a9fe:a9fe]/latest/" } : undefined));
    const rec = recordingFetch();
    await refused(resolveImage(`${evil.host}/httpd`, only(evil, rec.fetch)));
    expect(rec.asked.filter((u) => !u.startsWith(evil.url))).toEqual([]);
  });

  it("a token realm aimed at an unlisted loopback service is refused, and the service sees nothing", async () => {
    const before = inward.requests.length;
    const evil = await hostileRegistry((r) => (r.path === "/v2/"
      ? { respond: { status: 401, headers: { "www-authenticate": `Bearer realm="${inward.url}/token",service="evil"` } } }
      : undefined));
    const err = await refused(resolveImage(`${evil.host}/httpd`, only(evil)));
    expect(err.message).toMatch(/loopback address/);
    expect(inward.requests.length).toBe(before);
  });

  it("an image reference naming the metadata address is refused before any request", async () => {
    const rec = recordingFetch();
    await refused(resolveImage("169.254.169.254/latest/meta-data:x", { fetch: rec.fetch, listedRegistries: [], retry: { retries: 0 } }));
    await refused(resolveImage("[fe80::1]:5000/app", { fetch: rec.fetch, listedRegistries: [], retry: { retries: 0 } }));
    expect(rec.asked).toEqual([]);
  });

  it("an image reference naming an unlisted loopback service is refused on a cell, by name too", async () => {
    const before = inward.requests.length;
    const rf = createRegistryFetch();
    try {
      const port = new URL(inward.url).port;
      const opts = { fetch: rf.fetch, schemes: ["http"] as const, listedRegistries: [], retry: { retries: 0 } };
      await refused(resolveImage(`${inward.host}/app`, opts));
      await refused(resolveImage(`localhost:${port}/app`, opts));
    } finally {
      await rf.close();
    }
    expect(inward.requests.length).toBe(before);
  });

  it("a registry name that resolves to loopback is refused by the cell's fetch at connect time", async () => {
    // The cell's fetch called directly: only DNS (here /etc/hosts) says localhost is 127.0.0.1.
    const before = inward.requests.length;
    const port = new URL(inward.url).port;
    const strict = createRegistryFetch();
    const listed = createRegistryFetch({ insecureRegistries: [`localhost:${port}`] });
    try {
      await refused(strict.fetch(`http://localhost:${port}/v2/`));
      expect(inward.requests.length).toBe(before);
      // The admin listing that name is what lets it through.
      expect((await listed.fetch(`http://localhost:${port}/v2/`)).status).toBe(200);
      expect(inward.requests.length).toBe(before + 1);
    } finally {
      await Promise.all([strict.close(), listed.close()]);
    }
  });
});

describe("no downgrade from https", () => {
  let dir: string;
  let server: Server;
  let tlsHost: string;
  let caPem: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "berth-downgrade-"));
    const ca = await makeTestCa(dir);
    caPem = ca.caPem;
    // A TLS registry the admin trusts, which answers its ping and redirects every manifest to plain http.
    server = createServer({ cert: await readFile(ca.serverCertPath), key: await readFile(ca.serverKeyPath) }, (req, res) => {
      if (req.url === "/v2/") return void res.end("{}");
      res.writeHead(307, { location: `${inward.url}${req.url ?? "/"}` });
      res.end();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    tlsHost = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(dir, { recursive: true, force: true });
  });

  it("a TLS registry that redirects to plain http is refused, even to a listed host", async () => {
    const before = inward.requests.length;
    const rf = createRegistryFetch({ trustedCaCertificates: [caPem], cellOnlyRegistries: [tlsHost] });
    try {
      const err = await refused(resolveImage(`${tlsHost}/httpd`, { fetch: rf.fetch, listedRegistries: [tlsHost, inward.host], retry: { retries: 0 } }));
      expect(err.message).toMatch(/downgrade from https to plain http/);
    } finally {
      await rf.close();
    }
    expect(inward.requests.length).toBe(before);
  });
});
