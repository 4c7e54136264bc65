/**
 * The whole local stack (`npm start`): the control plane under wrangler dev
 * with its local D1 (state in .wrangler/), a registry on loopback holding the
 * demo image (busybox httpd, built offline), one cell agent and the router.
 * State lives in .berth/; Ctrl-C stops the daemons and leaves containers for
 * the next start to re-adopt.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { chmod, mkdir, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { buildAndPushFixtures } from "../test/fixtures/build-images";
import { startControlPlane } from "../test/support/control-plane";
import { startRegistry } from "../test/support/registry";
import { adminCall, enrollmentToken, registerRouter, startAgentProcess, startRouterProcess } from "../test/support/stack";

const ROOT = resolve(import.meta.dirname, "..");
const STATE = join(ROOT, ".berth");
const API_PORT = Number(process.env.BERTH_API_PORT ?? 8787);
const ROUTER_PORT = Number(process.env.BERTH_ROUTER_PORT ?? 8080);

function devVars(): Record<string, string> {
  const text = readFileSync(join(ROOT, ".dev.vars"), "utf8");
  return Object.fromEntries(text.split("\n").filter((l) => l.includes("=")).map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));
}

/** The cell's address: this host's own non-loopback IPv4 (published ports never go on 127.0.0.1). */
function hostAddress(): string {
  if (process.env.BERTH_CELL_ADDRESS) return process.env.BERTH_CELL_ADDRESS;
  const addrs = JSON.parse(execFileSync("ip", ["-4", "-j", "addr", "show", "scope", "global"], { encoding: "utf8" })) as { ifname: string; addr_info: { local: string }[] }[];
  const a = addrs.flatMap((i) => i.addr_info.map((x) => x.local)).find(Boolean);
  if (!a) throw new Error("no global IPv4 address on this host: set BERTH_CELL_ADDRESS to an address of this machine");
  return a;
}

const say = (s: string) => process.stdout.write(`stack: ${s}\n`);

async function main() {
  // 0711: containers' mapped root users traverse it to their root filesystems.
  await mkdir(STATE, { recursive: true, mode: 0o711 });
  await chmod(STATE, 0o711);
  const vars = devVars();
  say("starting the control plane (wrangler dev, local D1)...");
  const cp = await startControlPlane({
    port: API_PORT, persistDir: join(ROOT, ".wrangler/state"), adminToken: vars.ADMIN_TOKEN, encryptionKey: vars.ENCRYPTION_KEY,
  });
  say("starting the registry and building the demo image...");
  const registry = await startRegistry();
  await buildAndPushFixtures(registry.host);
  await adminCall(cp, "PATCH", "/v3/admin/docker_registry_access", { insecure_registries: [registry.host] });

  const cellDir = join(STATE, "cell");
  const registered = existsSync(join(cellDir, "cell.json"));
  say("starting the cell agent...");
  const agent = await startAgentProcess({
    apiUrl: cp.url, ...(registered ? {} : { enrollmentToken: await enrollmentToken(cp, "cell") }),
    name: "local", address: hostAddress(), stateDir: cellDir, containerCidr: "10.254.0.0/22", portMin: 61000, portMax: 61999,
  });
  const tokenFile = join(STATE, "router-token");
  if (!existsSync(tokenFile)) await writeFile(tokenFile, await registerRouter(cp, "local-router"), { mode: 0o600 });
  say("starting the router...");
  const router = await startRouterProcess(cp.url, readFileSync(tokenFile, "utf8").trim(), join(STATE, "router.log"), ROUTER_PORT);

  process.stdout.write(`
Berth is running.
  control plane  ${cp.url}          (admin token: ${cp.adminToken})
  router         http://127.0.0.1:${router.port}   (apps at http://<app>.apps.localhost:${router.port})
  registry       ${registry.host}   (demo image: ${registry.host}/httpd:latest)
  logs           .berth/cell/agent.log, .berth/router.log

Next, in another terminal:
  npx berth api ${cp.url}
  npx berth login -t ${cp.adminToken}
  npx berth create-space dev && npx berth target -s dev
  npx berth enable-feature-flag diego_docker
  npx berth push demo -o ${registry.host}/httpd:latest -m 64M -k 64M
  curl http://demo.apps.localhost:${router.port}/

Ctrl-C stops the stack (containers keep running and are re-adopted next time).
`);
  const stop = async () => {
    say("stopping...");
    await router.kill();
    await agent.kill();
    await registry.stop();
    await cp.stop();
    process.exit(0);
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}

await main();
