/**
 * Each instance's writable layer is an ext4 filesystem in a loop-mounted
 * sparse file, and a few per disk_mb are kept ready. A tenant cycling through
 * distinct disk_mb values must not make the cell keep spares (loop devices,
 * files) for every size it ever saw: spares are kept for the few sizes taken
 * most recently. Real mkfs and loop mounts, as root.
 */
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { UpperPool, type UpperFs } from "../../agent/rootfs/upper-pool";

const base = mkdtempSync(join(tmpdir(), "berth-spares-"));
let pool: UpperPool | undefined;
afterAll(async () => {
  await pool?.close();
  rmSync(base, { recursive: true, force: true });
});

describe("spare upper filesystems", () => {
  it("a tenant cycling through ten disk_mb values leaves spares for the most recent few sizes only", async () => {
    pool = await UpperPool.open(join(base, "uppers"), new Set());
    const taken: UpperFs[] = [];
    for (let diskMb = 8; diskMb < 18; diskMb++) {
      taken.push(await pool.take(diskMb));
      await pool.prewarm(diskMb); // joins the refill the take started and the spares it discards
    }
    const images = readdirSync(join(base, "uppers")).filter((n) => n.endsWith(".img"));
    const spares = images.length - taken.length;
    // The defaults: 2 spares for each of the 4 most recent sizes.
    expect(spares).toBeLessThanOrEqual(2 * 4);
    for (const fs of taken) await pool.discard(fs);
  }, 120_000);
});
