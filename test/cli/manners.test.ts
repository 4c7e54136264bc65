/**
 * The CLI prints what works (issue 22), against a real control plane (wrangler
 * dev, local D1) that says its apps answer on port 8080: route URLs with the
 * router's port, https assumed for a bare host:port (and an endpoint whose
 * certificate cannot be verified refused unless --skip-ssl-validation), the
 * token read from stdin instead of argv, strict integer flags, JSON errors
 * with --json, a logs tail that reconnects with backoff, `berth apps` in a
 * fixed number of calls, and --version. The network faults come from a TCP
 * proxy in front of the control plane (test/support/tcp-proxy.ts).
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { version } from "../../package.json";
import { routeUrl } from "../../cli/context";
import { apiTarget } from "../../cli/commands/session";
import { reconnectDelay } from "../../cli/commands/logs";
import { berthCli } from "../support/cli";
import { startControlPlane, type ControlPlane } from "../support/control-plane";
import { adminCall, eventually } from "../support/stack";
import { startTcpProxy, type TcpProxy } from "../support/tcp-proxy";
import { makeTestCa } from "../support/tls";

let cp: ControlPlane;
let dir: string;
let home: string;
let tlsProxy: TcpProxy;
let cut: TcpProxy;
let homeSeq = 0;
const { berth, berthWith, ok, intoNewSpace } = berthCli(() => home);

const stdin = (text: string) => Object.assign(Readable.from([text]), { isTTY: false });
const cpPort = () => Number(new URL(cp.url).port);

/** A fresh CLI session (its own BERTH_HOME). */
async function freshHome(): Promise<void> {
  home = join(dir, `home-${++homeSeq}`);
}

beforeAll(async () => {
  cp = await startControlPlane({ vars: { APPS_PORT: "8080" } });
  dir = await mkdtemp(join(tmpdir(), "berth-cli-"));
  const ca = await makeTestCa(dir);
  tlsProxy = await startTcpProxy({ host: "127.0.0.1", port: cpPort() }, { tls: { certPath: ca.serverCertPath, keyPath: ca.serverKeyPath } });
  cut = await startTcpProxy({ host: "127.0.0.1", port: cpPort() });
  await adminCall(cp, "PATCH", "/v3/feature_flags/diego_docker", { enabled: true });
}, 120_000);

afterAll(async () => {
  await tlsProxy?.stop();
  await cut?.stop();
  await cp?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("berth --version", () => {
  it("prints the version, also as -v", async () => {
    await freshHome();
    for (const flag of ["--version", "-v"]) {
      const r = await berth(flag);
      expect(r.code).toBe(0);
      expect(r.out).toBe(`berth version ${version}\n`);
    }
  });
});

describe("berth api", () => {
  it("assumes https for host:port, as cf, and says so", () => {
    expect(apiTarget("127.0.0.1:8787")).toEqual({ target: "https://127.0.0.1:8787", assumedHttps: true });
    expect(apiTarget("api.example.com")).toEqual({ target: "https://api.example.com", assumedHttps: true });
    expect(apiTarget("http://127.0.0.1:8787/")).toEqual({ target: "http://127.0.0.1:8787", assumedHttps: false });
    expect(() => apiTarget("ftp://x")).toThrow(/scheme must be http or https/);
    expect(() => apiTarget("http://")).toThrow(/Invalid API endpoint/);
  });

  it("refuses an endpoint whose certificate it cannot verify, with cf's tip; --skip-ssl-validation goes on, and later commands keep it", async () => {
    await freshHome();
    const bare = `127.0.0.1:${tlsProxy.port}`;
    const refused = await berth("api", bare);
    expect(refused.code).toBe(1);
    expect(refused.out).toContain(`No scheme given: assuming https://${bare}, as cf does`);
    expect(refused.err).toContain(`Invalid SSL Cert for https://${bare}`);
    expect(refused.err).toContain("TIP: Use 'berth api --skip-ssl-validation' to continue with an insecure API endpoint");
    expect((await berth("api")).out).toContain("No API endpoint set");

    const out = await ok("api", bare, "--skip-ssl-validation");
    expect(out).toContain(`API endpoint:   https://${bare} (TLS certificate not verified)`);
    // The session keeps the choice: login and a command over the same unverified TLS.
    await ok("login", "-t", cp.adminToken);
    expect(await ok("feature-flag", "diego_docker")).toContain("enabled");
  });

  it("a bare host:port of a plain-HTTP endpoint fails over https, naming the https URL it tried", async () => {
    await freshHome();
    const r = await berth("api", `127.0.0.1:${cpPort()}`);
    expect(r.code).toBe(1);
    expect(r.out).toContain(`assuming https://127.0.0.1:${cpPort()}`);
    expect(r.err).toContain(`https://127.0.0.1:${cpPort()}`);
  });
});

describe("berth login", () => {
  it("reads the token from stdin, so it stays out of argv and shell history", async () => {
    await freshHome();
    await ok("api", cp.url);
    const r = await berthWith({ stdin: stdin(`${cp.adminToken}\n`) }, "login");
    expect(r.code).toBe(0);
    expect(r.out).toContain("Authenticating...\nOK");
    expect(await ok("feature-flag", "diego_docker")).toContain("enabled");
  });

  it("prompts for the token in a terminal without echoing it (the real binary on a pty, through script(1))", async () => {
    await freshHome();
    await ok("api", cp.url);
    const bin = join(import.meta.dirname, "../../cli/bin/berth.js");
    const child = spawn("script", ["-qec", `${process.execPath} ${bin} login`, "/dev/null"], {
      env: { ...process.env, BERTH_HOME: home, BERTH_TOKEN: "" }, stdio: ["pipe", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d));
    child.stderr.on("data", (d: Buffer) => (output += d));
    const exited = new Promise<number | null>((r) => child.once("exit", r));
    await eventually("the prompt", async () => (output.includes("Token: ") ? true : undefined), 30_000, 50);
    child.stdin.write(`${cp.adminToken}\r`);
    expect(await exited).toBe(0);
    expect(output).toContain("Authenticating...");
    expect(output).toContain("OK");
    expect(output).not.toContain(cp.adminToken);
    expect(await ok("feature-flag", "diego_docker")).toContain("enabled");
  }, 60_000);

  it("refuses an empty stdin and a wrong token, saving nothing", async () => {
    await freshHome();
    await ok("api", cp.url);
    const empty = await berthWith({ stdin: stdin("\n") }, "login");
    expect(empty.code).toBe(1);
    expect(empty.err).toContain("No token given: type it at the prompt, pipe it on stdin");
    const wrong = await berthWith({ stdin: stdin("bu_not-a-token\n") }, "login");
    expect(wrong.code).toBe(1);
    expect(wrong.err).toContain("CF-InvalidAuthToken");
    expect((await berth("feature-flag", "diego_docker")).err).toContain("Not logged in");
  });
});

describe("integer flags", () => {
  it.each([
    ["scale", "web", "-i", "3abc"],
    ["scale", "web", "-i", "-1"],
    ["push", "web", "-o", "img", "-i", "1.5"],
    ["push", "web", "-o", "img", "-t", "60s"],
    ["registry-access", "remove-ca", "0x1"],
  ])("refuse %s %s … %s", async (...argv) => {
    await freshHome();
    const r = await berth(...argv);
    expect(r.code).toBe(2);
    expect(r.err).toContain(`expected a non-negative integer, got '${argv.at(-1)}'`);
  });
});

describe("--json", () => {
  it("prints errors as JSON in the API's shape: API errors, usage errors and local ones", async () => {
    await freshHome();
    const notLoggedIn = await berth("--json", "feature-flag", "diego_docker");
    expect(notLoggedIn.code).toBe(1);
    expect(JSON.parse(notLoggedIn.err)).toEqual({ errors: [{ title: "NotLoggedIn", detail: "No API endpoint set. Use 'berth api' to set an endpoint." }] });

    const usage = await berth("scale", "web", "-i", "3abc", "--json");
    expect(usage.code).toBe(2);
    expect(JSON.parse(usage.err).errors[0]).toMatchObject({ title: "UsageError", detail: expect.stringContaining("got '3abc'") });
    const unknown = await berth("--json", "apps", "--bogus");
    expect(unknown.code).toBe(2);
    expect(JSON.parse(unknown.err).errors[0].detail).toContain("unknown option '--bogus'");

    await intoNewSpace(cp.url, cp.adminToken, "json-space");
    const missing = await berth("--json", "app", "nope");
    expect(missing.code).toBe(1);
    expect(missing.out).toBe("");
    expect(JSON.parse(missing.err)).toEqual({ errors: [{ title: "CF-ResourceNotFound", detail: "App 'nope' not found" }] });
    const api = await berth("--json", "scale", "nope2", "-i", "1");
    expect(JSON.parse(api.err).errors[0].title).toBe("CF-ResourceNotFound");
  });
});

describe("BERTH_TRACE", () => {
  it("prints each request on stderr with its status and time, as CF_TRACE does for cf", async () => {
    await freshHome();
    await intoNewSpace(cp.url, cp.adminToken, "trace-space");
    const r = await berthWith({ env: { BERTH_TRACE: "true" } }, "apps");
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z GET \/v3\/apps\?\S* 200 \d+ms$/m);
    expect((await berth("apps")).err).toBe("");
  });
});

describe("routes print the URL that works", () => {
  it("adds the routers' port when it is not the scheme's own", () => {
    expect(routeUrl("demo.apps.localhost", { scheme: "http", port: 8080 })).toBe("http://demo.apps.localhost:8080");
    expect(routeUrl("demo.apps.localhost", { scheme: "http", port: 80 })).toBe("http://demo.apps.localhost");
    expect(routeUrl("demo.apps.localhost", { scheme: "http", port: null })).toBe("http://demo.apps.localhost");
    expect(routeUrl("demo.example.com", { scheme: "https", port: 443 })).toBe("https://demo.example.com");
    expect(routeUrl("demo.example.com", { scheme: "https", port: 8443 })).toBe("https://demo.example.com:8443");
    expect(routeUrl("demo.apps.localhost/api/v1", { scheme: "http", port: 8080 })).toBe("http://demo.apps.localhost:8080/api/v1");
  });

  it("push, app and apps show http://APP.apps.localhost:8080 from a control plane whose apps answer on 8080", async () => {
    await freshHome();
    await intoNewSpace(cp.url, cp.adminToken, "routes-space");
    const pushed = await ok("push", "web", "-o", "registry.invalid/httpd:latest", "--no-start");
    expect(pushed).toContain("route: http://web.apps.localhost:8080");
    expect(await ok("app", "web")).toContain("routes:            http://web.apps.localhost:8080");
    expect(await ok("apps")).toMatch(/^web\s+stopped\s+web:0\/1\s+http:\/\/web\.apps\.localhost:8080$/m);
  });
});

describe("berth apps", () => {
  it("makes the same few API calls for 1 app as for 6", async () => {
    await freshHome();
    await intoNewSpace(cp.url, cp.adminToken, "many");
    const calls = async () => {
      const seen: string[] = [];
      const r = await berthWith({ onRequest: (m, p) => seen.push(`${m} ${p}`) }, "--json", "apps");
      expect(r.code).toBe(0);
      return { seen, apps: JSON.parse(r.out) as { name: string; instances: number; routes: string[] }[] };
    };
    await ok("push", "app0", "-o", "registry.invalid/x:1", "--no-start", "-i", "2");
    const one = await calls();
    expect(one.apps).toEqual([expect.objectContaining({ name: "app0", instances: 2, routes: ["http://app0.apps.localhost:8080"] })]);
    for (let i = 1; i < 6; i++) await ok("push", `app${i}`, "-o", "registry.invalid/x:1", "--no-start");
    const six = await calls();
    expect(six.apps.map((a) => a.name).sort()).toEqual(["app0", "app1", "app2", "app3", "app4", "app5"]);
    expect(six.apps.find((a) => a.name === "app3")!.routes).toEqual(["http://app3.apps.localhost:8080"]);
    expect(six.seen.length).toBe(one.seen.length);
    expect(six.seen.length).toBeLessThanOrEqual(4);
  });
});

describe("berth logs APP (tail)", () => {
  it("backs off doubling up to the cap", () => {
    expect([0, 1, 2, 3, 10].map((a) => reconnectDelay(a, 1000, 30_000))).toEqual([1000, 2000, 4000, 8000, 30_000]);
  });

  it("reconnects with backoff when the stream drops or the API is unreachable, says so, and stops when asked", async () => {
    await freshHome();
    await intoNewSpace(`http://127.0.0.1:${cut.port}`, cp.adminToken, "tail-space");
    await ok("push", "tailed", "-o", "registry.invalid/x:1", "--no-start");
    const stop = new AbortController();
    let output = "";
    const before = cut.upgrades();
    const tail = berthWith({ signal: stop.signal, env: { BERTH_LOGS_RECONNECT_MS: "100" }, onOutput: (o) => (output = o) }, "logs", "tailed");
    await eventually("the tail's WebSocket", async () => (cut.upgrades() > before ? true : undefined), 20_000, 20);
    await new Promise((r) => setTimeout(r, 300));
    cut.cut();
    await eventually("the reconnect", async () => (output.includes("Reconnected.") ? true : undefined), 20_000, 50);
    expect(output).toMatch(/Log stream lost \(.+\); reconnecting in 0\.1 s\.\.\./);

    // Unreachable for a while: each attempt waits twice as long as the last.
    await cut.refuse();
    await eventually("three failed attempts", async () => ((output.match(/reconnecting in/g) ?? []).length >= 4 ? true : undefined), 20_000, 50);
    expect(output).toContain("reconnecting in 0.2 s");
    expect(output).toContain("reconnecting in 0.4 s");
    await cut.accept();
    const reconnects = (output.match(/Reconnected\./g) ?? []).length;
    await eventually("the second reconnect", async () => ((output.match(/Reconnected\./g) ?? []).length > reconnects ? true : undefined), 20_000, 50);

    stop.abort();
    const r = await tail;
    expect(r.code).toBe(0);
  }, 60_000);

  it("ends with an error when the API refuses the stream once the app is gone: retrying would not help", async () => {
    await freshHome();
    await intoNewSpace(`http://127.0.0.1:${cut.port}`, cp.adminToken, "refused-space");
    await ok("push", "gone", "-o", "registry.invalid/x:1", "--no-start");
    const before = cut.upgrades();
    const tail = berthWith({ env: { BERTH_LOGS_RECONNECT_MS: "50" } }, "logs", "gone");
    await eventually("the tail's WebSocket", async () => (cut.upgrades() > before ? true : undefined), 20_000, 20);
    await new Promise((r) => setTimeout(r, 300));
    await ok("delete", "gone", "-f");
    cut.cut();
    const r = await tail;
    expect(r.code).toBe(1);
    expect(r.err).toContain("log stream refused: HTTP 404");
    expect((r.out.match(/reconnecting in/g) ?? []).length).toBe(1);
  }, 60_000);
});
