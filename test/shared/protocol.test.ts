import { describe, expect, it } from "vitest";
import { desiredSetSchema } from "../../shared/protocol/desired-set";
import { heartbeatSchema, instanceReportsSchema } from "../../shared/protocol/heartbeat";
import { instanceSpecSchema } from "../../shared/protocol/instance";
import { cellRegistrationSchema } from "../../shared/protocol/enrollment";
import { stagingResultSchema } from "../../shared/protocol/staging";

const D = `sha256:${"a".repeat(64)}`;
const spec = {
  instance_guid: "i1", process_guid: "p1", process_version: "v1", index: 0, app_guid: "a1", app_name: "web-app", process_type: "web",
  image: { ref: "registry.local:5000/app:1", manifest_digest: D, layers: [{ digest: D, size: 10, media_type: "application/vnd.oci.image.layer.v1.tar+gzip", diff_id: D }] },
  command: { kind: "exec", argv: ["/bin/httpd", "-f"] }, user: "root", env: { PORT: "8080" }, workdir: "/", port: 8080,
  memory_mb: 256, disk_mb: 512, health_check: { type: "port", timeout_s: 60, invocation_timeout_s: 1, interval_s: 30, endpoint: null },
  registry_access_version: 0,
};
const report = { instance_guid: "i1", state: "CRASHED", since: 1, host_port: null, crash_count: 1, exit: { status: 137, signal: "SIGKILL", oom: true }, reason: "out of memory", usage: null };

describe("protocol schemas", () => {
  it("accepts a full desired set", () => {
    const set = { protocol: 1, version: 3, instances: [spec], staging_tasks: [{ build_guid: "b", image: "x/y", registry_access_version: 2 }],
      registry_access: { version: 2, trusted_ca_certificates: [], insecure_registries: ["10.0.0.0/8"], cell_only_registries: [] } };
    expect(desiredSetSchema.parse(set)).toEqual(set);
  });

  it("accepts references to taken instances beside specs, and refuses a reference carrying more than its names", () => {
    const ref = { instance_guid: "i2", process_guid: "p1", index: 1, taken: true };
    const set = { protocol: 1, version: 3, instances: [spec, ref], staging_tasks: [],
      registry_access: { version: 2, trusted_ca_certificates: [], insecure_registries: [], cell_only_registries: [] } };
    expect(desiredSetSchema.parse(set)).toEqual(set);
    const r = desiredSetSchema.safeParse({ ...set, instances: [{ ...ref, env: { A: "1" } }] });
    expect(r.success).toBe(false);
    expect(r.error!.issues.map((i) => i.path.join("."))).toContain("instances.0");
  });

  it.each([
    ["an unknown protocol version", { protocol: 2 }, "protocol"],
    ["a command that is neither shell, exec nor none", { instances: [{ ...spec, command: { kind: "magic" } }] }, "instances.0.command.kind"],
    ["an exec command with an empty argv", { instances: [{ ...spec, command: { kind: "exec", argv: [] } }] }, "instances.0.command.argv"],
    ["a layer digest that is not a digest", { instances: [{ ...spec, image: { ...spec.image, manifest_digest: "latest" } }] }, "instances.0.image.manifest_digest"],
    ["an unknown field", { instances: [{ ...spec, privileged: true }] }, "instances.0"],
  ])("rejects %s, naming the field", (_name, patch, path) => {
    const base = { protocol: 1, version: 1, instances: [spec], staging_tasks: [], registry_access: { version: 0, trusted_ca_certificates: [], insecure_registries: [], cell_only_registries: [] } };
    const r = desiredSetSchema.safeParse({ ...base, ...patch });
    expect(r.success).toBe(false);
    expect(r.error!.issues.map((i) => i.path.join("."))).toContain(path);
  });

  it("accepts heartbeats, with a list of reports or without, and reports with exit details", () => {
    const beat = { protocol: 1, capacity: { memory_mb: 1, disk_mb: 1, containers: 1 }, free: { memory_mb: 1, disk_mb: 1, containers: 1 }, cached_layers: [D] };
    expect(heartbeatSchema.parse({ ...beat, instances: [report] }).instances![0]!.exit!.oom).toBe(true);
    expect(heartbeatSchema.parse(beat).instances).toBeUndefined();
    expect(heartbeatSchema.safeParse({ ...beat, instances: null }).success).toBe(false);
    expect(instanceReportsSchema.safeParse({ protocol: 1, instances: [] }).success).toBe(false);
    expect(instanceReportsSchema.safeParse({ protocol: 1, instances: [{ ...report, state: "EXPLODED" }] }).success).toBe(false);
  });

  it("checks registrations and staging results", () => {
    expect(cellRegistrationSchema.safeParse({ protocol: 1, enrollment_token: "t", name: "cell 1", zone: "z", address: "10.0.0.2", capacity: { memory_mb: 1, disk_mb: 1, containers: 1 } }).success).toBe(false);
    expect(stagingResultSchema.parse({ protocol: 1, build_guid: "b", state: "FAILED", error: "Start command not specified" }).state).toBe("FAILED");
    expect(stagingResultSchema.safeParse({ protocol: 1, build_guid: "b", state: "STAGED" }).success).toBe(false);
    expect(instanceSpecSchema.parse(spec)).toEqual(spec);
  });
});
