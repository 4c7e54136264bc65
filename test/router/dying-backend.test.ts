/**
 * A backend process killed (SIGKILL) while traffic flows: its keep-alive
 * connections die and new ones are refused; every request must still be
 * answered by the survivor.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { afterEach, expect, it } from "vitest";
import { get, route, startBackend, startRouter } from "./support";

const BACKEND_SCRIPT = `
const http = require("node:http");
const server = http.createServer((req, res) => res.end(JSON.stringify({ backend: "doomed" })));
server.listen(0, "127.0.0.1", () => process.stdout.write(server.address().port + "\\n"));
`;

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function spawnBackend(): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, ["-e", BACKEND_SCRIPT], { stdio: ["ignore", "pipe", "inherit"] });
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  const [chunk] = (await once(child.stdout!, "data")) as [Buffer];
  return { child, port: Number(chunk.toString().trim()) };
}

it("keeps answering through the survivor when a backend dies mid-test", async () => {
  const doomed = await spawnBackend();
  const survivor = await startBackend("survivor");
  cleanups.push(() => survivor.close());
  const r = await startRouter({ table: { version: 1, routes: [route("d.apps.test", doomed.port, survivor.port)] } });
  cleanups.push(() => r.router.shutdown());

  const answers: string[] = [];
  let killed = false;
  // Four clients in parallel, 40 requests each; the backend dies after the first 30 answers.
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      for (let i = 0; i < 40; i++) {
        const reply = await get(r.port, "d.apps.test");
        expect(reply.status).toBe(200);
        answers.push((JSON.parse(reply.body) as { backend: string }).backend);
        if (answers.length === 30 && !killed) {
          killed = true;
          doomed.child.kill("SIGKILL");
          await once(doomed.child, "exit");
        }
      }
    }),
  );
  expect(answers).toHaveLength(160);
  expect(answers.slice(0, 30)).toContain("doomed");
  expect(answers.slice(40)).not.toContain("doomed");
  expect(answers.filter((a) => a === "survivor").length).toBeGreaterThan(80);
});
