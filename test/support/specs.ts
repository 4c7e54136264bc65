/** Instance specs for agent-side tests, valid by the protocol schema. */
import { randomUUID } from "node:crypto";
import { instanceSpecSchema, type InstanceSpec } from "../../shared/protocol/instance";

export function makeSpec(overrides: Partial<InstanceSpec> = {}): InstanceSpec {
  return instanceSpecSchema.parse({
    instance_guid: randomUUID(),
    process_guid: randomUUID(),
    process_version: randomUUID(),
    index: 0,
    app_guid: randomUUID(),
    app_name: "test-app",
    process_type: "web",
    image: {
      ref: "127.0.0.1:5000/busybox:latest",
      manifest_digest: `sha256:${"a".repeat(64)}`,
      layers: [],
    },
    command: { kind: "exec", argv: ["/bin/true"] },
    user: "root",
    env: {},
    workdir: "/",
    port: 8080,
    memory_mb: 64,
    disk_mb: 64,
    health_check: { type: "port", timeout_s: 60, invocation_timeout_s: 1, interval_s: 30, endpoint: null },
    registry_access_version: 0,
    ...overrides,
  });
}
