/**
 * @module Test hosts in network namespaces of the test's own making, reached
 * with `nsenter --net` only (docs/architecture.md § Tests: `ip netns exec` would hide the cell's
 * mounts). Every name and address is unique per call, so test files and
 * engineers sharing the machine never collide. Addresses come from the
 * benchmarking range 198.18.0.0/15, which no real network routes.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomInt } from "node:crypto";
import { mkdtemp, mkdir, rm, writeFile, chmod, readdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { parseNetworkConfig, type NetworkConfig, type NetworkConfigInput } from "../../agent/network/config";

const run = promisify(execFile);

const TAG_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789";

/** Random [a-z0-9] letters, starting with a letter (usable in interface and table names). */
export function uniqueTag(length = 4): string {
  return Array.from({ length }, (_, i) => TAG_CHARS[randomInt(i === 0 ? 26 : 36)]).join("");
}

/** Runs a command, throwing with its stderr on failure. */
export async function sh(argv: string[], input?: string): Promise<string> {
  if (input === undefined) return (await run(argv[0]!, argv.slice(1))).stdout;
  return new Promise((resolve, reject) => {
    const child = execFile(argv[0]!, argv.slice(1), (error, stdout, stderr) =>
      error ? reject(new Error(`${argv.join(" ")}: ${stderr}`, { cause: error })) : resolve(stdout),
    );
    child.stdin!.end(input);
  });
}

/** A /30 in 198.18.0.0/15 nobody on this machine uses yet: [network+1, network+2]. */
async function freeTestPair(): Promise<[string, string]> {
  const used = await sh(["ip", "-4", "-o", "addr"]);
  for (;;) {
    const block = randomInt(0, 2 ** 15) * 4;
    const [a, b] = [(block >> 8) & 255, block & 255];
    const prefix = `198.${18 + (block >> 16)}.${a}.`;
    if (!used.includes(prefix)) return [`${prefix}${b + 1}`, `${prefix}${b + 2}`];
  }
}

/** A container range (10.<x>.<y>.0/24) no route of this machine covers. */
export async function freeContainerCidr(): Promise<string> {
  const routes = await sh(["ip", "-4", "route", "show", "table", "all"]);
  for (;;) {
    const cidr = `10.${randomInt(200, 250)}.${randomInt(0, 256)}.0/24`;
    if (!routes.includes(cidr.slice(0, cidr.lastIndexOf(".")) + ".")) return cidr;
  }
}

/**
 * A network manager config of the test's own: table `<prefix>_<tag>`, veths
 * `brt<tag>-*`, a free container range, ten host ports from a random base,
 * run and state dirs under `dir`; `extra` overrides.
 */
export async function testNetworkConfig(prefix: string, dir: string, cellAddress: string, extra: Partial<NetworkConfigInput> = {}): Promise<NetworkConfig> {
  const min = 40000 + randomInt(20000);
  const tag = uniqueTag(4);
  return parseNetworkConfig({
    cellName: `${prefix}_${tag}`,
    ifTag: tag,
    containerCidr: await freeContainerCidr(),
    cellAddress,
    hostPorts: { min, max: min + 9 },
    runDir: join(dir, "run"),
    stateDir: join(dir, "state"),
    ...extra,
  });
}

export interface CellAddress {
  ifname: string;
  address: string;
  remove(): Promise<void>;
}

/** An interface of the test's own with no traffic: a veth pair (this kernel has no dummy driver). */
export async function addIdleLink(ifname: string): Promise<void> {
  await sh(["ip", "link", "add", ifname, "type", "veth", "peer", "name", `bti${uniqueTag(8)}`]);
}

/** The cell's address: an address on an interface the test owns. */
export async function makeCellAddress(): Promise<CellAddress> {
  const ifname = `btd${uniqueTag(8)}`;
  const [address] = await freeTestPair();
  await addIdleLink(ifname);
  await sh(["ip", "-batch", "-"], `addr add ${address}/32 dev ${ifname}\nlink set ${ifname} up\n`);
  return { ifname, address, remove: () => sh(["ip", "link", "del", ifname]).then(() => undefined, () => undefined) };
}

export interface TestHost {
  /** Namespace file to enter with `nsenter --net=`. */
  netnsPath: string;
  /** The host's address on its link to the cell host. */
  address: string;
  /** The cell host's end of that link. */
  peerAddress: string;
  hostIfname: string;
  exec(argv: string[]): Promise<{ code: number; stdout: string }>;
  spawn(argv: string[]): ChildProcess;
  remove(): Promise<void>;
}

/**
 * A host in its own network namespace linked to the cell host by a veth
 * pair, default route via the cell host (so it can reach the cell address and
 * answer masqueraded container traffic).
 */
export async function makeTestHost(): Promise<TestHost> {
  const dir = await mkdtemp(join(tmpdir(), "berth-host-"));
  const netnsPath = join(dir, "net");
  await writeFile(netnsPath, "");
  await sh(["unshare", `--net=${netnsPath}`, "true"]);
  const hostIfname = `bto${uniqueTag(8)}`;
  const [peerAddress, address] = await freeTestPair();
  await sh(["ip", "link", "add", hostIfname, "type", "veth", "peer", "name", "eth0", "netns", netnsPath]);
  await sh(["ip", "-batch", "-"], `addr add ${peerAddress}/30 dev ${hostIfname}\nlink set ${hostIfname} up\n`);
  await sh(["nsenter", `--net=${netnsPath}`, "ip", "-batch", "-"], `link set lo up\naddr add ${address}/30 dev eth0\nlink set eth0 up\nroute add default via ${peerAddress}\n`);
  const children: ChildProcess[] = [];
  return {
    netnsPath,
    address,
    peerAddress,
    hostIfname,
    exec: (argv) => execIn(netnsPath, argv),
    spawn(argv) {
      const child = spawn("nsenter", [`--net=${netnsPath}`, ...argv], { stdio: "ignore" });
      children.push(child);
      return child;
    },
    async remove() {
      for (const c of children) c.kill("SIGKILL");
      await sh(["ip", "link", "del", hostIfname]).catch(() => undefined);
      await sh(["umount", netnsPath]).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Runs argv inside the namespace at `netnsPath`; never throws on a non-zero exit. */
export function execIn(netnsPath: string, argv: string[]): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    execFile("nsenter", [`--net=${netnsPath}`, ...argv], (error, stdout) => {
      resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout });
    });
  });
}

/** `busybox wget` from inside a namespace: the body, or undefined when it could not connect in `timeoutS`. */
export async function fetchIn(netnsPath: string, url: string, timeoutS = 2): Promise<string | undefined> {
  // busybox 1.35's own -T option crashes wget here (SIGSEGV); timeout(1) bounds it instead.
  const { code, stdout } = await execIn(netnsPath, ["timeout", String(timeoutS), "busybox", "wget", "-q", "-O", "-", url]);
  return code === 0 ? stdout : undefined;
}

export interface Httpd {
  stop(): void;
}

/**
 * busybox httpd in a namespace serving `body` at / and the client's address
 * at /cgi-bin/peer (to see what masquerading made of it); `wrapper` goes
 * between nsenter and httpd (e.g. `unshare --user` to run it as a container would).
 */
export async function startHttpd(netnsPath: string, bind: string, port: number, body: string, wrapper: string[] = []): Promise<Httpd> {
  const root = await mkdtemp(join(tmpdir(), "berth-httpd-"));
  await writeFile(join(root, "index.html"), body);
  await mkdir(join(root, "cgi-bin"));
  await writeFile(join(root, "cgi-bin", "peer"), '#!/bin/sh\nprintf "Content-Type: text/plain\\r\\n\\r\\n%s" "$REMOTE_ADDR"\n');
  await chmod(join(root, "cgi-bin", "peer"), 0o755);
  const child = spawn("nsenter", [`--net=${netnsPath}`, ...wrapper, "busybox", "httpd", "-f", "-p", `${bind}:${port}`, "-h", root], { stdio: "ignore" });
  const url = `http://${bind}:${port}/`;
  for (let i = 0; i < 100 && (await fetchIn(netnsPath, url, 1)) !== body; i++) await new Promise((r) => setTimeout(r, 20));
  return {
    stop() {
      child.kill("SIGKILL");
      void rm(root, { recursive: true, force: true });
    },
  };
}

/** What the host has that networking could leak: links, IPv4 addresses, nft tables, namespace files. */
export async function hostSnapshot(runDir?: string): Promise<{ links: string[]; addresses: string[]; tables: string[]; netns: string[] }> {
  const links = (await sh(["ip", "-o", "link"])).split("\n").filter(Boolean).map((l) => l.split(": ")[1]!.split("@")[0]!);
  const addresses = (await sh(["ip", "-4", "-o", "addr"])).split("\n").filter(Boolean).map((l) => l.split(/\s+/).slice(1, 4).join(" "));
  const tables = (await sh(["nft", "list", "tables"])).split("\n").filter(Boolean);
  const netns = runDir ? await readdir(runDir).catch(() => []) : [];
  return { links: links.sort(), addresses: addresses.sort(), tables: tables.sort(), netns };
}
