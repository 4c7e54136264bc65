/**
 * @module HAProxy's runtime API on its unix socket: a batch of commands on
 * one connection in prompt mode, each answer told apart by the prompt that
 * follows it. A command whose answer is not a known success is an error,
 * named with the command.
 */
import net from "node:net";

/** Answers HAProxy gives to commands that worked (the others answer nothing). */
const SUCCESS = new Set(["", "New server registered.", "Server deleted.", "Done."]);

export class RuntimeApiError extends Error {
  constructor(
    readonly command: string,
    readonly answer: string,
  ) {
    super(`haproxy: ${command}: ${answer}`);
    this.name = "RuntimeApiError";
  }
}

/** Sends `commands`; resolves with each answer (trimmed), in order. */
export function runtimeApi(socketPath: string, commands: readonly string[], timeoutMs = 5_000): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath, () => socket.end(`prompt\n${commands.join("\n")}\nquit\n`));
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`haproxy runtime API silent for ${timeoutMs} ms`)));
    let out = "";
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => (out += chunk));
    socket.once("error", reject);
    socket.once("close", (hadError) => {
      if (hadError) return;
      // "\n> " precedes each answer (the first one, empty, answers "prompt").
      const answers = out.split("\n> ").slice(1, 1 + commands.length).map((a) => a.trim());
      if (answers.length < commands.length) return reject(new Error(`haproxy runtime API answered ${answers.length} of ${commands.length} commands`));
      resolve(answers);
    });
  });
}

/** Runs `commands`, rejecting with the first that failed. */
export async function runCommands(socketPath: string, commands: readonly string[]): Promise<void> {
  if (commands.length === 0) return;
  const answers = await runtimeApi(socketPath, commands);
  answers.forEach((answer, i) => {
    if (!SUCCESS.has(answer)) throw new RuntimeApiError(commands[i]!, answer);
  });
}
