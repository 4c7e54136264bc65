// Tar bombs against the agent's layer extraction, as root on a real
// filesystem: each runs in a process of its own (tar-bomb-child.ts) that
// unpacks the hostile stream with the cell's limits and reports the most
// memory it held alive. Each must fail the layer with its own error while the
// agent's memory stays within a small bound; the parser used to hold a long
// header whole, and the writer kept something per entry for the whole layer
// (a dropped device here, a created path or directory otherwise).
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import type { Bomb } from "./support/tar-bomb-child";

const MIB = 1 << 20;
/** What the agent may hold alive on top of its baseline while it refuses a bomb. */
const HELD_BOUND = 32 * MIB;
/**
 * What its resident set may grow by, the native extractor included: a long
 * header must not be buffered anywhere (a quarter of what it announces), and
 * entry bookkeeping stops at the layer's entry and kept-name caps (250k
 * entries, 16 MiB of names, plus their containers' overhead and the heap above).
 */
const RSS_BOUND = { header: 16 * MIB, entries: 96 * MIB };
const base = mkdtempSync(join(tmpdir(), "berth-tar-bombs-"));
afterAll(() => rmSync(base, { recursive: true, force: true }));

interface Outcome { code?: string; message: string; baselineBytes: number; peakBytes: number; rssBaselineBytes: number; rssPeakBytes: number }

async function detonate(bomb: Bomb): Promise<Outcome> {
  const dir = mkdtempSync(join(base, `${bomb}-`));
  const child = join(import.meta.dirname, "support/tar-bomb-child.ts");
  // A V8 heap cap too: a parser that kept the bomb would die here instead of taking the host's memory.
  const { stdout } = await promisify(execFile)(process.execPath, ["--expose-gc", "--max-old-space-size=256", "--import", "tsx", child, bomb, dir], { maxBuffer: MIB });
  rmSync(dir, { recursive: true, force: true });
  const r = JSON.parse(stdout);
  const mib = (n: number) => (n / MIB).toFixed(1);
  console.log(`${bomb}: ${r.code ?? "accepted"}; agent held ${mib(r.peakBytes - r.baselineBytes)} MiB over its ${mib(r.baselineBytes)} MiB baseline (peak ${mib(r.peakBytes)} MiB); resident set +${mib(r.rssPeakBytes - r.rssBaselineBytes)} MiB over ${mib(r.rssBaselineBytes)} MiB`);
  return r;
}

function expectBounded(r: Outcome, rssBound: number): void {
  expect(r.peakBytes - r.baselineBytes).toBeLessThan(HELD_BOUND);
  expect(r.rssPeakBytes - r.rssBaselineBytes).toBeLessThan(rssBound);
}

describe("a hostile image's layer tar cannot exhaust the agent's memory", () => {
  it("an image whose layer holds a 64 MiB PAX header is refused before the header is buffered", async () => {
    const r = await detonate("pax-header-64mib");
    expect(r.code).toBe("HEADER_TOO_LARGE");
    expectBounded(r, RSS_BOUND.header);
  });

  it("an image whose layer holds a 64 MiB GNU long name is refused before the name is buffered", async () => {
    const r = await detonate("gnu-long-name-64mib");
    expect(r.code).toBe("HEADER_TOO_LARGE");
    expectBounded(r, RSS_BOUND.header);
  });

  it("an image whose layer holds a million empty entries is refused at the layer's entry cap", async () => {
    const r = await detonate("million-device-entries");
    expect(r.code).toBe("TOO_MANY_ENTRIES");
    expectBounded(r, RSS_BOUND.entries);
  });
});
