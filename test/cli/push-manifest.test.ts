/**
 * The manifest `berth push` sends (cli/push-manifest.ts), pure: what the flags
 * write, how they lie over a -f manifest, and the names and images read back.
 */
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { manifestFromFile, manifestFromFlags, pushedApps, type PushFlags } from "../../cli/push-manifest";

const flags = (f: Partial<PushFlags> = {}): PushFlags => ({ route: true, ...f });

describe("manifestFromFlags", () => {
  it("writes cf's keys for each flag, and asks for the default route", () => {
    const text = manifestFromFlags("web", flags({
      dockerImage: "reg.test/httpd:1", dockerUsername: "alice", startCommand: "httpd -f", instances: 2, memory: "64M", disk: "1G",
      healthCheckType: "http", endpoint: "/health", timeout: 30,
    }));
    expect(parse(text)).toEqual({ applications: [{
      name: "web", docker: { image: "reg.test/httpd:1", username: "alice" }, command: "httpd -f", instances: 2, memory: "64M", disk_quota: "1G",
      "health-check-type": "http", "health-check-http-endpoint": "/health", timeout: 30, "default-route": true,
    }] });
  });

  it("--no-route is no-route: true", () => {
    expect(parse(manifestFromFlags("w", flags({ dockerImage: "i", route: false }))).applications[0]).toEqual({ name: "w", docker: { image: "i" }, "no-route": true });
  });
});

describe("manifestFromFile", () => {
  const two = `applications:
- name: front
  docker: { image: reg.test/a }
  routes:
  - route: shop.apps.test
- name: back # the API
  docker:
    image: reg.test/b
`;

  it("sends every app, asking for the default route only where none is named", () => {
    const apps = parse(manifestFromFile(two, undefined, flags())).applications;
    expect(apps[0]).toEqual({ name: "front", docker: { image: "reg.test/a" }, routes: [{ route: "shop.apps.test" }] });
    expect(apps[1]).toEqual({ name: "back", docker: { image: "reg.test/b" }, "default-route": true });
  });

  it("NAME picks one app, and flags lie over it; --no-route drops its routes", () => {
    const text = manifestFromFile(two, "front", flags({ instances: 3, dockerImage: "reg.test/a:2", route: false }));
    expect(parse(text).applications).toEqual([{ name: "front", docker: { image: "reg.test/a:2" }, instances: 3, "no-route": true }]);
    expect(manifestFromFile(two, "back", flags({ dockerUsername: "bob" }))).toContain("username: bob");
  });

  it("refuses flags for several apps, and a NAME the manifest lacks", () => {
    expect(() => manifestFromFile(two, undefined, flags({ instances: 2 }))).toThrow(/flags apply to one app/);
    expect(() => manifestFromFile(two, "nope", flags())).toThrow("Could not find app named 'nope' in manifest");
  });

  it("sends YAML that does not parse as written, for the API to name the line", () => {
    const broken = "applications:\n- name: a\n  docker: [\n";
    expect(manifestFromFile(broken, undefined, flags({ instances: 2 }))).toBe(broken);
    expect(pushedApps(broken)).toEqual([]);
  });
});

describe("pushedApps", () => {
  it("reads names, images and usernames, and refuses an app without an image", () => {
    expect(pushedApps("applications:\n- name: a\n  docker: { image: i, username: u }\n- name: b\n  docker: { image: j }\n"))
      .toEqual([{ name: "a", image: "i", username: "u" }, { name: "b", image: "j" }]);
    expect(() => pushedApps("applications:\n- name: a\n")).toThrow("App 'a' has no Docker image");
  });
});
