/**
 * A ContainerDriver that runs the spec's command as a plain host process. It
 * stands in for the container stack (image store, rootfs, network, native
 * runtime) only in supervisor tests, where what is under test is the runner's
 * state machine, health checks and stop sequence against real processes.
 */
import { spawn } from "node:child_process";
import type { Exit, InstanceSpec } from "../../shared/protocol/instance";
import { commandArgv } from "../../shared/staging/launch";
import type { ContainerDriver, RunningContainer } from "../../agent/supervisor/driver";

export class ProcessDriver implements ContainerDriver {
  readonly started: RunningContainer[] = [];

  async start(spec: InstanceSpec): Promise<RunningContainer> {
    const argv = commandArgv(spec.command);
    const child = spawn(argv[0]!, argv.slice(1), { env: { PATH: process.env.PATH, ...spec.env, PORT: String(spec.port) }, stdio: "ignore" });
    const exited = new Promise<Exit>((resolve) =>
      child.once("exit", (status, signal) => resolve({ status, signal, oom: false })),
    );
    await new Promise<void>((resolve, reject) => {
      child.once("spawn", resolve);
      child.once("error", reject);
    });
    const c: RunningContainer = {
      probeHost: "127.0.0.1",
      probePort: spec.port,
      hostPort: spec.port,
      pid: child.pid!,
      exited,
      async signal(sig) {
        if (child.exitCode === null && child.signalCode === null) child.kill(sig);
      },
      async destroy() {
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
        await exited;
      },
      async usage() {
        return null;
      },
    };
    this.started.push(c);
    return c;
  }

  async recover(): Promise<RunningContainer | null> {
    return null;
  }
}
