/**
 * diego_docker off (CF's default): creating, starting and restarting a Docker
 * app answer 403 CF-FeatureDisabled for everyone, admins included; stopping,
 * deleting and updating stay allowed (CF docs for the flag).
 */
import { beforeAll, describe, expect, it } from "vitest";
import { makeStartableApp, setDocker } from "./app-fixtures";
import { ADMIN, addDeveloper, api, createSpace, createUser, unique } from "./support";

let space: { guid: string };
let dev: { guid: string; token: string };
let app: { guid: string; droplet: string };

beforeAll(async () => {
  space = await createSpace();
  dev = await createUser();
  await addDeveloper(dev.guid, space.guid);
  await setDocker(true);
  app = await makeStartableApp(space.guid, dev.token);
  await setDocker(false);
});

const createBody = () => ({ name: unique("off"), relationships: { space: { data: { guid: space.guid } } }, lifecycle: { type: "docker", data: {} } });
const disabled = (detail = "Feature Disabled: diego_docker") => ({ errors: [{ code: 330002, title: "CF-FeatureDisabled", detail }] });

describe("with diego_docker disabled", () => {

  it.each([["an admin", () => ADMIN], ["a developer", () => dev.token]])("refuses %s creating, starting and restarting", async (_who, token) => {
    const create = await api("POST", "/v3/apps", { token: token(), body: createBody() });
    expect(create.status).toBe(403);
    expect(create.json).toEqual(disabled());
    for (const action of ["start", "restart"]) {
      const res = await api("POST", `/v3/apps/${app.guid}/actions/${action}`, { token: token() });
      expect(res.status).toBe(403);
      expect(res.json).toEqual(disabled());
    }
    expect((await api("GET", `/v3/apps/${app.guid}`, { token: token() })).json.state).toBe("STOPPED");
  });

  it("uses the flag's custom error message", async () => {
    await setDocker(false, "Docker apps are paused for maintenance");
    try {
      const res = await api("POST", `/v3/apps/${app.guid}/actions/start`, { token: dev.token });
      expect(res.json).toEqual(disabled("Feature Disabled: Docker apps are paused for maintenance"));
      expect((await api("POST", "/v3/apps", { token: ADMIN, body: createBody() })).json).toEqual(disabled("Feature Disabled: Docker apps are paused for maintenance"));
    } finally {
      await setDocker(false, null);
    }
  });

  it("still validates the body first (422 before 403, as CC validates the message first)", async () => {
    const res = await api("POST", "/v3/apps", { token: ADMIN, body: { ...createBody(), bogus: 1 } });
    expect(res.status).toBe(422);
  });

  it("still allows stop, updates, scaling, env vars, packages, droplets, routes, reads and delete", async () => {
    const t = dev.token;
    const g = app.guid;
    const allowed: [string, string, unknown, number][] = [
      ["POST", `/v3/apps/${g}/actions/stop`, undefined, 200],
      ["PATCH", `/v3/apps/${g}`, { name: unique("renamed") }, 200],
      ["PATCH", `/v3/apps/${g}/environment_variables`, { var: { A: "1" } }, 200],
      ["PATCH", `/v3/processes/${g}`, { command: "run" }, 200],
      ["POST", `/v3/processes/${g}/actions/scale`, { instances: 2 }, 202],
      ["POST", `/v3/apps/${g}/processes/web/actions/scale`, { instances: 0 }, 202],
      ["POST", "/v3/packages", { type: "docker", relationships: { app: { data: { guid: g } } }, data: { image: "busybox" } }, 201],
      ["PATCH", `/v3/apps/${g}/relationships/current_droplet`, { data: { guid: app.droplet } }, 200],
      ["POST", "/v3/routes", { host: unique("off"), relationships: { space: { data: { guid: space.guid } } } }, 201],
      ["GET", `/v3/apps/${g}`, undefined, 200],
      ["GET", "/v3/apps", undefined, 200],
      ["GET", `/v3/processes/${g}/stats`, undefined, 200],
      ["GET", `/v3/apps/${g}/env`, undefined, 200],
    ];
    for (const [method, path, body, status] of allowed) {
      const res = await api(method, path, { token: t, body });
      expect({ method, path, status: res.status }).toEqual({ method, path, status });
    }
    expect((await api("DELETE", `/v3/apps/${g}`, { token: t })).status).toBe(202);
  });

  it("lets start through again once the flag is back on", async () => {
    await setDocker(true);
    const again = await makeStartableApp(space.guid, dev.token);
    expect((await api("POST", `/v3/apps/${again.guid}/actions/start`, { token: dev.token })).status).toBe(200);
    await setDocker(false);
    expect((await api("POST", `/v3/apps/${again.guid}/actions/restart`, { token: dev.token })).status).toBe(403);
    // Stop with the flag off: the app can always be brought down.
    expect((await api("POST", `/v3/apps/${again.guid}/actions/stop`, { token: dev.token })).json.state).toBe("STOPPED");
  });
});
