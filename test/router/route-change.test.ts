/**
 * Route changes while traffic flows: clients hammering a route and a slow
 * streamed response in flight while the table adds an instance, drops one,
 * and adds enough routes to outgrow HAProxy's backend pool (a reload there).
 * Each change must be served within 1 s of the table, and no request may be
 * dropped or cut.
 */
import { expect, it } from "vitest";
import { request } from "undici";
import type { RouteEntry } from "../../shared/protocol/route-table";
import { LOOPBACK, get, route, startBackend, startRouter, until } from "./support";
import { cleanupsAfterEach, startBackendIn } from "./cleanups";

const cleanups = cleanupsAfterEach();

const backend = (...args: Parameters<typeof startBackend>) => startBackendIn(cleanups, ...args);

const CHUNKS = 20;

it("applies route changes within 1 s while requests flow, dropping none", async () => {
  const a = await backend("a");
  const b = await backend("b");
  // 20 chunks 100 ms apart: in flight across every change below.
  const stream = await backend("stream", (_req, res) => {
    res.writeHead(200, { "content-type": "text/plain" });
    let sent = 0;
    const timer = setInterval(() => {
      res.write(`chunk ${sent}\n`);
      if (++sent === CHUNKS) {
        clearInterval(timer);
        res.end();
      }
    }, 100);
  });
  let version = 1;
  const extra: RouteEntry[] = [];
  const table = (...app: number[]) => ({ version: version++, routes: [route("app.apps.test", ...app), route("stream.apps.test", stream.port), ...extra] });
  const r = await startRouter({ table: table(a.port) });
  cleanups.push(() => r.router.shutdown());

  const streamed = request(`http://${LOOPBACK}:${r.port}/`, { headers: { host: "stream.apps.test" } }).then(async (res) => ({ status: res.statusCode, body: await res.body.text() }));
  const answers: string[] = [];
  const failures: string[] = [];
  let hammering = true;
  const hammers = Array.from({ length: 4 }, async () => {
    while (hammering) {
      try {
        const reply = await get(r.port, "app.apps.test");
        if (reply.status === 200) answers.push((JSON.parse(reply.body) as { backend: string }).backend);
        else failures.push(`${reply.status} ${reply.body}`);
      } catch (err) {
        failures.push(String(err));
      }
    }
  });
  const answeredBy = (name: string, from: number) => answers.slice(from).includes(name);

  await until(() => answers.length > 20, 5_000, "traffic flowing on a");
  // An instance added: serves within 1 s.
  await r.router.applyTable(table(a.port, b.port));
  let mark = answers.length;
  await until(() => answeredBy("b", mark), 1_000, "b serving");
  // An instance dropped: gets no new request within 1 s.
  await r.router.applyTable(table(b.port));
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  mark = answers.length;
  await until(() => answers.length > mark + 20, 5_000, "traffic after a left");
  expect(answeredBy("a", mark)).toBe(false);
  // 100 more routes at once (more than HAProxy's first pool of backends): the newest serves within 1 s.
  for (let i = 0; i < 100; i++) extra.push(route(`extra-${i}.apps.test`, a.port));
  await r.router.applyTable(table(a.port, b.port));
  const started = Date.now();
  await until(async () => (await get(r.port, "extra-99.apps.test")).status === 200, 1_000, "the 100th new route serving");
  expect(Date.now() - started).toBeLessThan(1_000);
  mark = answers.length;
  await until(() => answeredBy("a", mark) && answeredBy("b", mark), 2_000, "a and b serving after the pool grew");

  hammering = false;
  await Promise.all(hammers);
  expect(failures).toEqual([]);
  const done = await streamed;
  expect(done.status).toBe(200);
  expect(done.body.split("\n").filter(Boolean)).toHaveLength(CHUNKS);
}, 30_000);
