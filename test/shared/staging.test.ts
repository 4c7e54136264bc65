/** Table tests of the staging and launch rules (CF's Docker builder, launcher and Cloud Controller). */
import { describe, expect, it } from "vitest";
import type { ImageConfig } from "../../shared/protocol/image";
import { cellInstanceEnv, instanceEnv, parseImageEnv, reservedEnvName, withInstanceGuid, type ApplicationFacts } from "../../shared/staging/env";
import { executionMetadata, processTypes, stagingFailure, startDisplay, START_COMMAND_NOT_SPECIFIED } from "../../shared/staging/execution-metadata";
import { appPort, commandArgv, NO_START_COMMAND, runUser, runWorkdir, startCommand } from "../../shared/staging/launch";
import { parseImageConfig } from "../../shared/registry/documents";
import { parseStopSignal } from "../../shared/staging/stop-signal";

const config = (c: Partial<ImageConfig> = {}): ImageConfig => ({ env: [], entrypoint: [], cmd: [], user: "", workdir: "", exposed_ports: [], ...c });

describe("execution_metadata", () => {
  it.each([
    [config(), "{}"],
    [config({ cmd: ["nginx", "-g", "daemon off;"] }), '{"cmd":["nginx","-g","daemon off;"]}'],
    [
      config({ entrypoint: ["/ep"], cmd: ["a"], workdir: "/srv", user: "app", exposed_ports: [{ port: 53, protocol: "tcp" }, { port: 53, protocol: "udp" }, { port: 80, protocol: "tcp" }] }),
      '{"cmd":["a"],"entrypoint":["/ep"],"workdir":"/srv","ports":[{"Port":53,"Protocol":"tcp"},{"Port":53,"Protocol":"udp"},{"Port":80,"Protocol":"tcp"}],"user":"app"}',
    ],
    [config({ env: ["A=1"], user: "1000:1001" }), '{"user":"1000:1001"}'],
  ])("%o → %s", (c, json) => {
    expect(executionMetadata(c)).toBe(json);
  });
});

describe("process_types and the staging failure", () => {
  it.each([
    [["/bin/ep", "x"], ["a", "b"], "/bin/ep x a b"],
    [["/bin/ep"], [], "/bin/ep"],
    [[], ["/bin/sh", "-c", "run it"], "/bin/sh -c run it"],
    [[], [], ""],
  ])("entrypoint %j, cmd %j → %j", (entrypoint, cmd, display) => {
    expect(startDisplay(config({ entrypoint, cmd }))).toBe(display);
    expect(processTypes(config({ entrypoint, cmd }))).toEqual({ web: display });
  });

  it.each([
    [config(), null, START_COMMAND_NOT_SPECIFIED],
    [config(), "  ", START_COMMAND_NOT_SPECIFIED],
    [config(), "./run", null],
    [config({ cmd: ["x"] }), null, null],
    [config({ entrypoint: ["x"] }), null, null],
  ])("%o with command %j → %j", (c, command, failure) => {
    expect(stagingFailure(c, command)).toBe(failure);
  });
});

describe("start command", () => {
  it.each([
    ["custom command wins over the image", "echo hi && sleep 1", ["/ep"], ["c"], { kind: "shell", script: "echo hi && sleep 1" }, ["/bin/sh", "-c", "echo hi && sleep 1"]],
    ["entrypoint ++ cmd", null, ["/ep", "-x"], ["c1", "c2"], { kind: "exec", argv: ["/ep", "-x", "c1", "c2"] }, ["/ep", "-x", "c1", "c2"]],
    ["entrypoint only", undefined, ["/ep"], [], { kind: "exec", argv: ["/ep"] }, ["/ep"]],
    ["cmd only", "", [], ["nginx", "-g", "daemon off;"], { kind: "exec", argv: ["nginx", "-g", "daemon off;"] }, ["nginx", "-g", "daemon off;"]],
  ] as const)("%s", (_name, command, entrypoint, cmd, expected, argv) => {
    const c = startCommand(command, { entrypoint: [...entrypoint], cmd: [...cmd] });
    expect(c).toEqual(expected);
    expect(commandArgv(c)).toEqual(argv);
  });

  it("has nothing to run without entrypoint, cmd or command", () => {
    const c = startCommand(null, { entrypoint: [], cmd: [] });
    expect(c).toEqual({ kind: "none" });
    expect(() => commandArgv(c)).toThrow(NO_START_COMMAND);
  });
});

describe("port, user, workdir", () => {
  it.each([
    [[], 8080],
    [[{ port: 5353, protocol: "udp" }], 8080],
    [[{ port: 9090, protocol: "tcp" }, { port: 53, protocol: "udp" }, { port: 8081, protocol: "tcp" }], 8081],
    [[{ port: 53, protocol: "tcp" }, { port: 53, protocol: "udp" }], 53],
  ] as const)("ports %j → %i", (ports, port) => {
    expect(appPort(ports)).toBe(port);
  });

  it.each([
    ["vcap", "app", "vcap"],
    [null, "app", "app"],
    [null, "1000:1001", "1000:1001"],
    [null, "", "root"],
    ["", null, "root"],
    [" ", "  ", "root"],
  ])("process user %j, image user %j → %s", (processUser, imageUser, user) => {
    expect(runUser(processUser, imageUser)).toBe(user);
  });

  it("works in the image's WorkingDir, else /", () => {
    expect(runWorkdir({ workdir: "/srv/app" })).toBe("/srv/app");
    expect(runWorkdir({ workdir: "" })).toBe("/");
  });
});

describe("environment", () => {
  const facts: ApplicationFacts = {
    appGuid: "a-1", appName: "web", spaceGuid: "s-1", spaceName: "dev", organization: null, uris: ["web.apps.example", "www.example"],
    memoryMb: 256, diskMb: 512, process: { guid: "p-1", type: "web", version: "v-1" },
  };

  it("lays app env over image env and platform vars over both", () => {
    const env = instanceEnv(
      ["PATH=/bin", "GREETING=image", "EQ=a=b", "NOVALUE", "PORT=1", "INSTANCE_INDEX=9", "MEMORY_LIMIT=1g"],
      { GREETING: "app", EXTRA: "x", PORT: "2", VCAP_SERVICES: "{\"db\":[]}" },
      { port: 8081, instanceIndex: 3, instanceGuid: "ig-1", application: facts },
    );
    const { VCAP_APPLICATION, ...rest } = env;
    expect(rest).toEqual({
      PATH: "/bin", GREETING: "app", EQ: "a=b", EXTRA: "x",
      PORT: "8081", MEMORY_LIMIT: "256m", VCAP_SERVICES: "{}",
      INSTANCE_INDEX: "3", CF_INSTANCE_INDEX: "3", INSTANCE_GUID: "ig-1", CF_INSTANCE_GUID: "ig-1",
    });
    expect(JSON.parse(VCAP_APPLICATION!)).toEqual({
      application_id: "a-1", application_name: "web", application_uris: ["web.apps.example", "www.example"], application_version: "v-1",
      cf_api: null, limits: { fds: 16384, mem: 256, disk: 512 }, name: "web", organization_id: null, organization_name: null,
      process_id: "p-1", process_type: "web", space_id: "s-1", space_name: "dev", uris: ["web.apps.example", "www.example"],
      users: null, version: "v-1", host: "0.0.0.0", port: 8081, instance_index: 3, instance_id: "ig-1",
    });
  });

  it("moves every instance-guid field to a replacement's guid", () => {
    const env = withInstanceGuid(instanceEnv([], {}, { port: 8080, instanceIndex: 0, instanceGuid: "old", application: facts }), "new");
    expect([env.INSTANCE_GUID, env.CF_INSTANCE_GUID, JSON.parse(env.VCAP_APPLICATION!).instance_id]).toEqual(["new", "new", "new"]);
  });

  it("adds the cell's CF_INSTANCE_* addresses and ports once the container has its network", () => {
    expect(cellInstanceEnv({ cellAddress: "10.0.0.5", hostPort: 61001, containerIp: "10.255.0.2", appPort: 8080 })).toEqual({
      CF_INSTANCE_IP: "10.0.0.5", CF_INSTANCE_INTERNAL_IP: "10.255.0.2", CF_INSTANCE_PORT: "61001",
      CF_INSTANCE_ADDR: "10.0.0.5:61001", CF_INSTANCE_PORTS: '[{"external":61001,"internal":8080}]',
    });
  });

  it("parses image Env: first = splits, later entries win", () => {
    expect(parseImageEnv(["A=1", "A=2", "B==x", "=bad", "C"])).toEqual({ A: "2", B: "=x" });
  });

  it.each([
    ["PORT", /set by the platform/],
    ["VCAP_SERVICES", /reserved/],
    ["VCAP_APPLICATION", /reserved/],
    ["PORTS", null],
    ["MY_VCAP_X", null],
    ["port", null],
  ])("%s → %s", (name, why) => {
    const r = reservedEnvName(name);
    if (why === null) expect(r).toBeNull();
    else expect(r).toMatch(why);
  });
});

describe("stop signal", () => {
  it.each([
    ["SIGQUIT", "SIGQUIT"],
    ["quit", "SIGQUIT"],
    [" 3 ", "SIGQUIT"],
    ["15", "SIGTERM"],
    ["SIGWINCH", "SIGWINCH"],
    ["SIGFOO", null],
    ["0", null],
    ["65", null],
    ["", null],
  ])("%j → %s", (value, name) => {
    expect(parseStopSignal(value)).toBe(name);
  });

  it("is read from the image config, and an image naming no signal is refused", () => {
    const config = (c: Record<string, unknown>) => new TextEncoder().encode(JSON.stringify({ config: c, rootfs: { type: "layers", diff_ids: [] } }));
    expect(parseImageConfig(config({ StopSignal: "QUIT" }), "the config").config.stop_signal).toBe("SIGQUIT");
    expect(parseImageConfig(config({}), "the config").config).not.toHaveProperty("stop_signal");
    expect(() => parseImageConfig(config({ StopSignal: "SIGNOPE" }), "the config")).toThrow('the config has STOPSIGNAL "SIGNOPE", which is not a signal.');
  });
});
