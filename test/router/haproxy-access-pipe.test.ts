/**
 * The HAProxy path's access lines come through a pipe the daemon drains on a
 * timer (agent/router/haproxy/access-pipe.ts): whole lines only, to the end
 * once HAProxy exits, and what HAProxy had to drop while the pipe was full is
 * counted and said, never silently lost.
 */
import { closeSync, mkdtempSync, rmSync, writeFileSync, writeSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { native } from "../../agent/native";
import { accessPipeBytes, drainAccessPipe } from "../../agent/router/haproxy/access-pipe";
import { requestMetrics } from "../../agent/router/metrics";
import { cleanupsAfterEach, startBackendIn } from "./cleanups";
import { DATA_PATH, get, route, startRouter, until } from "./support";

const cleanups = cleanupsAfterEach();

function collector(): { chunks: string[]; onLines: (text: string) => void } {
  const chunks: string[] = [];
  return { chunks, onLines: (text) => chunks.push(text) };
}

describe("the access-line pipe", () => {
  it("hands on whole lines only: a line, or a character, split between two writes waits for its end", async () => {
    const pipe = native.fsPipe(4096);
    const { chunks, onLines } = collector();
    const reader = drainAccessPipe(pipe.read, pipe.capacity, 60_000, onLines);
    const euro = Buffer.from("€"); // three bytes
    writeSync(pipe.write, Buffer.concat([Buffer.from("one\ntw"), euro.subarray(0, 1)]));
    reader.drain();
    expect(chunks).toEqual(["one\n"]);
    writeSync(pipe.write, Buffer.concat([euro.subarray(1), Buffer.from("o\nthree")]));
    reader.drain();
    expect(chunks).toEqual(["one\n", "tw€o\n"]);
    closeSync(pipe.write);
    reader.drain();
    await reader.ended;
    // The writer gone, its last line counts even without a newline.
    expect(chunks).toEqual(["one\n", "tw€o\n", "three\n"]);
  });

  it("reads on its timer and ends when the writer closes its end", async () => {
    const pipe = native.fsPipe(4096);
    const { chunks, onLines } = collector();
    const reader = drainAccessPipe(pipe.read, pipe.capacity, 5, onLines);
    writeSync(pipe.write, "a\nb\n");
    await until(() => chunks.length > 0, 2_000, "lines read on the timer");
    expect(chunks).toEqual(["a\nb\n"]);
    closeSync(pipe.write);
    await reader.ended;
  });

  it("asks for no more than the host's pipe-max-size, which a host may have lowered", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "berth-pipe-max-"));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    const max = path.join(dir, "pipe-max-size");
    writeFileSync(max, "262144\n");
    expect(accessPipeBytes(1024 * 1024, max)).toBe(262144);
    expect(accessPipeBytes(65536, max)).toBe(65536);
    expect(accessPipeBytes(65536, path.join(dir, "absent"))).toBe(65536);
  });

  it("refuses a pipe bigger than an unprivileged process may have, naming the size", () => {
    expect(() => native.fsPipe(2 ** 30)).toThrow(/F_SETPIPE_SZ 1073741824 bytes/);
  });
});

describe.runIf(DATA_PATH === "haproxy")("HAProxy's access lines", () => {
  it("counts and says the lines HAProxy dropped while the daemon left its pipe full; every other line is logged", async () => {
    const backend = await startBackendIn(cleanups, "a");
    const registry = new Registry();
    const { router, port, lines } = await startRouter({
      table: { version: 1, routes: [route("a.apps.test", backend.port)] },
      metrics: requestMetrics(registry),
      // One page of pipe, never read until HAProxy exits: it is full after a dozen lines.
      haproxy: { accessPipeBytes: 4096, accessReadEveryMs: 600_000, droppedEveryMs: 20 },
    });
    cleanups.push(() => router.shutdown());
    let sent = 0;
    const request = async (path = "/") => (sent++, get(port, "a.apps.test", path));
    await until(async () => (await request()).status === 200, 5_000, "route applied");

    while (sent < 60) expect((await request(`/${"x".repeat(200)}`)).status).toBe(200);
    const warned = () => lines.filter((l) => l.msg === "haproxy dropped access lines: its pipe was full (the daemon read it too late)");
    await until(() => warned().length > 0, 5_000, "the dropped lines said");
    // Every request has ended: a few more checks see the last drops.
    await new Promise((r) => setTimeout(r, 200));
    const dropped = warned().reduce((sum, l) => sum + (l.dropped as number), 0);
    expect(warned().at(-1)!.total).toBe(dropped);
    const counted = (await registry.getSingleMetric("berth_router_access_lines_dropped_total")!.get()).values[0]!.value;
    expect(counted).toBe(dropped);

    await router.shutdown();
    const logged = lines.filter((l) => l.msg === "request").length;
    expect(logged).toBeGreaterThan(0);
    expect(dropped).toBeGreaterThan(0);
    expect(logged + dropped).toBe(sent);
  });
});
