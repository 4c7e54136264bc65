/**
 * The test registry itself, checked with an independent client (skopeo): the
 * fixtures are all there with their configs, and the Basic, token and TLS
 * modes accept good credentials and refuse bad ones. If these fail, the
 * registry client's tests mean nothing.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { BASE_ENV, FIXTURES } from "../fixtures/images";
import { startRegistry, type TestRegistry } from "../support/registry";

const run = promisify(execFile);
const { host, storageDir } = inject("registry");

async function inspect(ref: string, ...flags: string[]) {
  const { stdout } = await run("skopeo", ["inspect", "--config", ...flags, `docker://${ref}`]);
  return JSON.parse(stdout) as { architecture: string; config: Record<string, unknown> };
}

describe("fixture registry", () => {
  it("holds every fixture with its config", async () => {
    const catalog = await (await fetch(`http://${host}/v2/_catalog`)).json() as { repositories: string[] };
    expect(catalog.repositories).toEqual(expect.arrayContaining([...Object.keys(FIXTURES), "multi-arch", "multi-arch-docker", "docker-v2s2", "httpd-zstd"]));
    const { config } = await inspect(`${host}/ports:latest`, "--tls-verify=false");
    expect(config.Env).toEqual(BASE_ENV);
    expect(Object.keys(config.ExposedPorts as object).sort()).toEqual([...FIXTURES.ports.ExposedPorts].sort());
    const user = await inspect(`${host}/user-uid-gid:latest`, "--tls-verify=false");
    expect(user.config.User).toBe("1000:1001");
  });

  describe("auth and TLS modes over the same storage", () => {
    const stop: TestRegistry[] = [];
    let basic: TestRegistry, token: TestRegistry, tls: TestRegistry;
    let certDir: string;
    beforeAll(async () => {
      [basic, token, tls] = await Promise.all([
        startRegistry({ storageDir, auth: { kind: "basic", username: "alice", password: "s3cret" } }),
        startRegistry({ storageDir, auth: { kind: "token", username: "bob", password: "hunter2" } }),
        startRegistry({ storageDir, tls: true }),
      ]);
      stop.push(basic, token, tls);
      certDir = await mkdtemp(join(tmpdir(), "berth-certs-"));
      await writeFile(join(certDir, "ca.crt"), tls.caPem!);
    });
    afterAll(async () => {
      await Promise.all(stop.map((r) => r.stop()));
      await rm(certDir, { recursive: true, force: true });
    });

    it("Basic: right credentials pull, wrong ones are refused", async () => {
      expect((await inspect(`${basic.host}/httpd:latest`, "--tls-verify=false", "--creds", "alice:s3cret")).architecture).toBe("amd64");
      await expect(inspect(`${basic.host}/httpd:latest`, "--tls-verify=false", "--creds", "alice:wrong")).rejects.toThrow(/unauthorized|401/i);
    });

    it("token: the issuer signs pulls for good credentials only", async () => {
      expect((await inspect(`${token.host}/httpd:latest`, "--tls-verify=false", "--creds", "bob:hunter2")).architecture).toBe("amd64");
      expect(token.tokenIssuer!.requests.some((r) => r.user === "bob" && r.scopes.includes("repository:httpd:pull"))).toBe(true);
      await expect(inspect(`${token.host}/httpd:latest`, "--tls-verify=false", "--creds", "bob:nope")).rejects.toThrow(/unauthorized|401/i);
      await expect(inspect(`${token.host}/httpd:latest`, "--tls-verify=false")).rejects.toThrow(/unauthorized|401|denied/i);
    });

    it("TLS: verified with the test CA, refused without it", async () => {
      expect((await inspect(`${tls.host}/httpd:latest`, "--cert-dir", certDir)).architecture).toBe("amd64");
      await expect(inspect(`${tls.host}/httpd:latest`)).rejects.toThrow(/certificate/i);
    });
  });
});
