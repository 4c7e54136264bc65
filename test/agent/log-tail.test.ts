import { appendFile, mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { completeLines, readSince, type Cursor } from "../../agent/logs/tail";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "berth-logtail-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Rotates like berth-init: NAME.(K-1) → NAME.K … NAME → NAME.1. */
async function rotate(keep = 2) {
  for (let i = keep; i > 1; i--) await rename(join(dir, `stdout.log.${i - 1}`), join(dir, `stdout.log.${i}`)).catch(() => undefined);
  await rename(join(dir, "stdout.log"), join(dir, "stdout.log.1"));
}

describe("completeLines()", () => {
  it("keeps a partial last line for later unless the file is final", () => {
    expect(completeLines(Buffer.from("a\nb\npart"), false)).toEqual({ lines: ["a", "b"], used: 4 });
    expect(completeLines(Buffer.from("a\npart"), true)).toEqual({ lines: ["a", "part"], used: 6 });
  });
  it("cuts a line longer than the limit instead of waiting forever", () => {
    expect(completeLines(Buffer.from("xxxxxx"), false, 4)).toEqual({ lines: ["xxxxxx"], used: 6 });
  });
});

describe("readSince()", () => {
  it("reads from the start, then only what is new", async () => {
    await writeFile(join(dir, "stdout.log"), "1\n2\n");
    const first = await readSince(dir, "stdout.log", null);
    expect(first.lines).toEqual(["1", "2"]);
    await appendFile(join(dir, "stdout.log"), "3\npartial");
    const second = await readSince(dir, "stdout.log", first.cursor);
    expect(second.lines).toEqual(["3"]);
    await appendFile(join(dir, "stdout.log"), " line\n");
    expect((await readSince(dir, "stdout.log", second.cursor)).lines).toEqual(["partial line"]);
  });

  it("follows its file through rotations and then reads the new one", async () => {
    await writeFile(join(dir, "stdout.log"), "1\n");
    const { cursor } = await readSince(dir, "stdout.log", null);
    await appendFile(join(dir, "stdout.log"), "2\n");
    await rotate();
    await writeFile(join(dir, "stdout.log"), "3\n");
    await rotate();
    await writeFile(join(dir, "stdout.log"), "4\n");
    expect((await readSince(dir, "stdout.log", cursor)).lines).toEqual(["2", "3", "4"]);
  });

  it("goes on from the oldest kept file when its file rotated away", async () => {
    await writeFile(join(dir, "stdout.log"), "lost\n");
    const gone: Cursor = { inode: 1, offset: 3 };
    await rotate();
    await writeFile(join(dir, "stdout.log"), "kept\n");
    expect((await readSince(dir, "stdout.log", gone)).lines).toEqual(["lost", "kept"]);
  });

  it("reads nothing when no log exists yet", async () => {
    expect(await readSince(join(dir, "missing"), "stdout.log", null)).toEqual({ lines: [], cursor: null });
  });
});
