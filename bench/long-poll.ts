/**
 * Long-poll wake-up latency: a desired-set change → the cell's held poll
 * answers with the new set. A real cell (the agent's own protocol client)
 * holds `GET /v3/cells/:id/desired?after=V` against wrangler dev; each change
 * is an admin edit of registry access (part of every cell's set version).
 * p50/p99 over N changes, measured from sending the edit to the new set in
 * the cell's hands (so it includes the edit's own D1 write and scheduler pass).
 *
 * Usage: npx tsx bench/long-poll.ts [changes=200]
 */
import { ControlPlaneClient, register } from "../agent/cell/control-plane";
import { startControlPlane } from "../test/support/control-plane";
import { adminCall, enrollmentToken } from "../test/support/stack";

const N = Number(process.argv[2] ?? 200);
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))]!;

const cp = await startControlPlane({ vars: { LONG_POLL_HOLD_MS: "50000" } });
const capacity = { memory_mb: 1024, disk_mb: 1024, containers: 4 };
const reg = await register(cp.url, { enrollment_token: await enrollmentToken(cp, "cell"), name: "poller", zone: "z1", address: "198.18.0.1", capacity });
const cell = new ControlPlaneClient(cp.url, reg.guid, reg.credential);
await cell.heartbeat({ capacity, free: capacity, cached_layers: [], instances: [] });
let version = (await cell.desired(null))!.version;

const latencies: number[] = [];
for (let i = 0; i < N; i++) {
  const held = cell.desired(version);
  // Let the poll reach its Durable Object before changing the set.
  await new Promise((r) => setTimeout(r, 20));
  const t0 = performance.now();
  await adminCall(cp, "PATCH", "/v3/admin/docker_registry_access", { insecure_registries: [`10.${i % 250}.0.1:5000`] });
  const set = await held;
  const ms = performance.now() - t0;
  if (!set) throw new Error("the poll ended without the change (204)");
  version = set.version;
  latencies.push(ms);
}
console.log(`long-poll wake-up: registry access edit sent → cell holds the new set, ${N} changes (wrangler dev, loopback)`);
console.log(`  p50 ${pct(latencies, 0.5).toFixed(1)} ms   p99 ${pct(latencies, 0.99).toFixed(1)} ms   max ${Math.max(...latencies).toFixed(1)} ms   (target p50 < 50 ms)`);
await cp.stop();
process.exit(0);
