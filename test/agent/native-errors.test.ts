/**
 * The addon's three modules (containers, filesystems, networking) fail with
 * one error shape (src/sys.h): a NativeError naming the step, the call, errno
 * (and its name) and the path, thrown by synchronous calls and rejected by
 * asynchronous ones.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { isNativeError } from "../../agent/native/errors";
import { native } from "../../agent/native/index";

function caught(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error("did not throw");
}

describe("one NativeError from every module", () => {
  it("filesystems: a synchronous call throws it, message and fields from the same failure", async () => {
    const dir = await mkdtemp(join(tmpdir(), "berth-native-errors-"));
    try {
      const err = caught(() => native.fsUnmount(join(dir, "not-a-mount"), false));
      expect(isNativeError(err)).toBe(true);
      expect(err).toMatchObject({ step: "unmount", syscall: "umount2", code: "ENOENT", errno: 2, path: join(dir, "not-a-mount") });
      expect((err as Error).message).toBe(`unmount: umount2 ${join(dir, "not-a-mount")}: No such file or directory`);
      const loop = await native.fsLoopMount(join(dir, "no-file"), dir, "ext4").catch((e: unknown) => e);
      expect(loop).toMatchObject({ name: "NativeError", step: "loop mount", syscall: "open", code: "ENOENT", path: join(dir, "no-file") });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("networking: a refused nft command rejects with it, libnftables' text in the message", async () => {
    const err = await native.nftRun("add table inet").catch((e: unknown) => e);
    expect(isNativeError(err)).toBe(true);
    expect(err).toMatchObject({ step: "nft", syscall: "nft_run_cmd_from_buffer", path: "" });
    expect((err as Error).message).toMatch(/^nft: nft_run_cmd_from_buffer: .*: Error: syntax error/s);
  });

  it("containers: watching a process that is gone rejects with it", async () => {
    const err = await native.containerWatch(2 ** 22 + 1, 1).catch((e: unknown) => e);
    expect(isNativeError(err)).toBe(true);
    expect(err).toMatchObject({ step: "wait", syscall: "pidfd_open", code: "ESRCH" });
  });
});
