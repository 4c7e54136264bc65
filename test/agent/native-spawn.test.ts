/**
 * The addon's spawnWait (posix_spawn + wait on a thread of its own), which
 * runs mkfs for the rootfs pool without forking the agent: exit status,
 * signal, stderr, and the errors for a program that cannot start or bad argv.
 */
import { describe, expect, it } from "vitest";
import { native } from "../../agent/native/index";

describe("native.spawnWait", () => {
  it("resolves with the exit status and stderr, stdout going nowhere", async () => {
    expect(await native.spawnWait(["sh", "-c", "echo out; echo err >&2; exit 3"])).toEqual({ status: 3, signal: null, stderr: "err\n" });
    expect(await native.spawnWait(["true"])).toEqual({ status: 0, signal: null, stderr: "" });
  });

  it("reports the signal that ended the program", async () => {
    expect(await native.spawnWait(["sh", "-c", "kill -9 $$"])).toEqual({ status: null, signal: 9, stderr: "" });
  });

  it("starts the program with no signal ignored or blocked, though Node ignores SIGPIPE", async () => {
    const { stderr } = await native.spawnWait(["sh", "-c", "grep -E '^Sig(Ign|Blk)' /proc/self/status >&2"]);
    const mask = (name: string) => BigInt(`0x${new RegExp(`${name}:\\s+([0-9a-f]+)`).exec(stderr)![1]}`);
    // Signals 1-31 (SIGPIPE is 13); 32 and 33 belong to glibc, which no spawn can reset.
    expect(mask("SigIgn") & 0x7fffffffn).toBe(0n);
    expect(mask("SigBlk")).toBe(0n);
  });

  it("rejects when the program cannot start, and throws on bad argv", async () => {
    await expect(native.spawnWait(["/nonexistent/berth-program"])).rejects.toMatchObject({
      name: "NativeError",
      message: "spawn: posix_spawnp /nonexistent/berth-program: No such file or directory",
      code: "ENOENT",
    });
    expect(() => native.spawnWait([])).toThrow(TypeError);
    expect(() => native.spawnWait(["true", 1 as unknown as string])).toThrow(TypeError);
    expect(() => native.spawnWait(["tr\0ue"])).toThrow(TypeError);
  });
});
