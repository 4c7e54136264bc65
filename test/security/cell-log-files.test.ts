// The io directory (logs, exit.json) belongs to the container's root, so its
// names are the app's to choose. The agent's log reader runs as host root:
// a name the app turned into a symlink must not carry it to a host file.
// The app's write access is played by the test writing as the container's
// mapped root, which is what that root can do with the directory.
import { lchownSync, readdirSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readSince } from "../../agent/logs/tail";
import { openRuntimeCell, type RuntimeCell } from "./support/runtime-cell";

let cell: RuntimeCell;
beforeAll(async () => {
  cell = await openRuntimeCell("logs");
});
afterAll(() => cell?.close());

describe("an app cannot read host files through its log files", () => {
  it("an app that plants stdout.log.1 -> a root-only host file does not get its lines shipped", async () => {
    const secret = join(cell.base, "cell-credential");
    writeFileSync(secret, "host-secret-line\n", { mode: 0o600 });
    const { spec, hostId } = await cell.prepare("echo app-line");
    const c = await cell.run(spec);
    const io = dirname(cell.runtime.logPath(c.id, "stdout"));
    symlinkSync(secret, join(io, "stdout.log.1"));
    lchownSync(join(io, "stdout.log.1"), hostId, hostId);
    expect(readdirSync(io)).toContain("stdout.log.1");

    const { lines } = await readSince(io, "stdout.log", null);
    expect(lines).toEqual(["app-line"]);
  });
});
