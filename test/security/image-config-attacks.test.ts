/**
 * Images made to bloat what staging stores and copies into every instance
 * spec (issue 15, item 8): a config with 100 000 Env entries, one whose kept
 * fields come to megabytes, a manifest with hundreds of layers. Each fails
 * staging with a message naming the cap, through the shared client as the
 * Worker and cells run it (the Worker's staging: test/security/worker/).
 * And a staging result a cell cannot deliver fails the build instead of
 * being posted forever.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { CellAgent } from "../../agent/cell/agent";
import { ControlPlaneClient, type StagingOutcome } from "../../agent/cell/control-plane";
import { stageOnCell } from "../../agent/cell/staging";
import type { ContainerDriver } from "../../agent/supervisor/driver";
import { defaultRunnerConfig } from "../../agent/supervisor/runner";
import { IMAGE_LIMITS } from "../../shared/protocol/image";
import { MAX_STAGING_RESULT_BYTES } from "../../shared/protocol/staging";
import { PROTOCOL_VERSION } from "../../shared/protocol/version";
import { RegistryError } from "../../shared/registry/errors";
import { resolveImage } from "../../shared/registry/resolve";
import { startCraftedImageRegistry } from "../support/crafted-image-registry";
import type { LoopbackServer } from "../support/loopback-server";

const servers: LoopbackServer[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
});

async function crafted(image: Parameters<typeof startCraftedImageRegistry>[0]) {
  const s = await startCraftedImageRegistry(image);
  servers.push(s);
  return s;
}

async function tooLarge(reg: LoopbackServer): Promise<string> {
  const err = await resolveImage(`${reg.host}/bloat:1`, { fetch, schemes: ["http"], listedRegistries: [reg.host], retry: { retries: 0 } }).then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(RegistryError);
  expect((err as RegistryError).code).toBe("too_large");
  return (err as RegistryError).message;
}

const access = (host: string) => ({ version: 1, trusted_ca_certificates: [], insecure_registries: [host], cell_only_registries: [] });

describe("bloated image configs", () => {
  it("an image whose config has 100 000 Env entries is refused at staging, naming the cap", async () => {
    const reg = await crafted({ config: { Env: Array.from({ length: 100_000 }, (_, i) => `V${i}=x`), Cmd: ["/app"] }, layers: 1 });
    expect(await tooLarge(reg)).toMatch(new RegExp(`its Env has 100000 entries, more than the ${IMAGE_LIMITS.listEntries} accepted`));
    // On a cell the build fails with the same words.
    const outcome = await stageOnCell({ build_guid: "b-env", image: `${reg.host}/bloat:1`, registry_access_version: 1 }, access(reg.host));
    expect(outcome).toMatchObject({ state: "FAILED", error: expect.stringMatching(/Env has 100000 entries/) });
  });

  it("an image whose Env and Cmd come to megabytes in few entries is refused, naming the byte cap", async () => {
    const reg = await crafted({ config: { Env: Array.from({ length: 40 }, (_, i) => `V${i}=${"x".repeat(100_000)}`), Cmd: ["/app"] }, layers: 1 });
    expect(await tooLarge(reg)).toMatch(new RegExp(`more than the ${IMAGE_LIMITS.configBytes} accepted`));
  });

  it("an image with 500 layers is refused before its config is read", async () => {
    const reg = await crafted({ config: { Cmd: ["/app"] }, layers: 500 });
    expect(await tooLarge(reg)).toMatch(new RegExp(`has 500 layers, more than the ${IMAGE_LIMITS.layers}`));
  });
});

describe("staging results a cell cannot deliver", () => {
  const posted: StagingOutcome[] = [];
  let served = false;
  /** Desired-set polls after the first: the agent's loop going round, by which a resend would have come. */
  let polls = 0;
  let onPoll = () => undefined as void;
  // A control plane with the Worker's rules for staging results: bodies over the cap answer 413, a STAGED result for this build 422.
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      if (req.url?.includes("/staging_results")) {
        const result = JSON.parse(body.toString("utf8")) as StagingOutcome;
        posted.push(result);
        if (body.length > MAX_STAGING_RESULT_BYTES) return void res.writeHead(413).end(JSON.stringify({ errors: [{ title: "CF-RequestTooLarge", detail: "too large" }] }));
        if (result.state === "STAGED") return void res.writeHead(422).end(JSON.stringify({ errors: [{ title: "CF-UnprocessableEntity", detail: "image.config: the image config is too large" }] }));
        return void res.writeHead(200).end("{}");
      }
      if (req.url?.includes("/desired") && !served) {
        served = true;
        const set = { protocol: PROTOCOL_VERSION, version: 1, instances: [], registry_access: access("127.0.0.1"),
          staging_tasks: [{ build_guid: "b-1", image: "reg.example/app:1", registry_access_version: 1 }, { build_guid: "b-2", image: "reg.example/app:2", registry_access_version: 1 }] };
        return void res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(set));
      }
      polls += 1;
      onPoll();
      setTimeout(() => res.writeHead(204).end(), 20);
    });
  });
  let dir: string | undefined;
  let agent: CellAgent | undefined;
  afterAll(async () => {
    await agent?.shutdown();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("a staging result over the body cap, or one the control plane refuses, fails the build once instead of being posted forever", async () => {
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    dir = await mkdtemp(join(tmpdir(), "berth-staging-result-"));
    const staged = (build_guid: string, envBytes: number): StagingOutcome => ({
      build_guid, state: "STAGED",
      image: { ref: "reg.example/app:1", manifest_digest: `sha256:${"a".repeat(64)}`, index_digest: null, layers: [],
        config: { env: [`BIG=${"x".repeat(envBytes)}`], entrypoint: [], cmd: ["/app"], user: "", workdir: "", exposed_ports: [] } },
    });
    agent = new CellAgent(
      { stateDir: dir, capacity: { memory_mb: 1024, disk_mb: 1024, containers: 4 }, heartbeatIntervalMs: 60_000, bulkSyncIntervalMs: 30_000, pollJitterMs: 0, backoff: { baseMs: 10, maxMs: 20 }, runner: defaultRunnerConfig },
      {
        client: new ControlPlaneClient(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, "cell-guid", "credential"),
        driver: {} as ContainerDriver,
        log: pino({ level: "silent" }),
        cachedLayers: async () => [],
        // b-1 resolves to more than a body may hold; b-2 to a result the control plane refuses.
        stage: async (task) => staged(task.build_guid, task.build_guid === "b-1" ? 2 * MAX_STAGING_RESULT_BYTES : 10),
      },
    );
    await agent.start();
    const failedBoth = () => ["b-1", "b-2"].every((b) => posted.some((p) => p.build_guid === b && p.state === "FAILED"));
    // Both failures sent, then ten more rounds of the agent's loop in which nothing may be posted again.
    await new Promise<void>((resolve) => {
      let from: number | null = null;
      onPoll = () => {
        if (from === null && failedBoth()) from = polls;
        if (from !== null && polls - from >= 10) resolve();
      };
    });
    const b1 = posted.filter((p) => p.build_guid === "b-1");
    const b2 = posted.filter((p) => p.build_guid === "b-2");
    expect(b1.map((p) => p.state)).toEqual(["FAILED"]);
    expect(b1[0]).toMatchObject({ error: expect.stringMatching(new RegExp(`more than the ${MAX_STAGING_RESULT_BYTES} the control plane accepts`)) });
    expect(b2.map((p) => p.state)).toEqual(["STAGED", "FAILED"]);
    expect(b2[1]).toMatchObject({ error: expect.stringMatching(/image config is too large/) });
  }, 10_000);
});
