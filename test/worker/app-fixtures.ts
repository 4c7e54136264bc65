/**
 * Fixtures for the app API tests: the diego_docker flag, apps made through the
 * API, and STAGED droplets inserted straight into D1 (staging is /v3/builds,
 * tested on its own; these tests only need a droplet to point at).
 */
import * as schema from "../../worker/db/schema";
import { ADMIN, addDeveloper, api, createSpace, createUser, db, unique } from "./support";

export async function setDocker(enabled: boolean, customErrorMessage: string | null = null) {
  const res = await api("PATCH", "/v3/feature_flags/diego_docker", { token: ADMIN, body: { enabled, custom_error_message: customErrorMessage } });
  if (res.status !== 200) throw new Error(`flag update failed: ${res.status} ${JSON.stringify(res.json)}`);
}

export async function makeApp(spaceGuid: string, token = ADMIN, name = unique("app")) {
  const res = await api("POST", "/v3/apps", {
    token,
    body: { name, relationships: { space: { data: { guid: spaceGuid } } }, lifecycle: { type: "docker", data: {} } },
  });
  if (res.status !== 201) throw new Error(`app create failed: ${res.status} ${JSON.stringify(res.json)}`);
  return res.json as { guid: string; name: string; state: string };
}

export async function insertDroplet(appGuid: string, opts: { state?: string; processTypes?: Record<string, string> } = {}) {
  const guid = crypto.randomUUID();
  await db().insert(schema.droplets).values({
    guid, appGuid, state: opts.state ?? "STAGED", image: "registry.test/app:1",
    manifestDigest: `sha256:${"a".repeat(64)}`, executionMetadata: "{}",
    processTypes: opts.processTypes ?? { web: "/bin/app --serve" }, imageSpec: {},
  });
  return guid;
}

/** An app with a current STAGED droplet, ready to start. */
export async function makeStartableApp(spaceGuid: string, token = ADMIN) {
  const app = await makeApp(spaceGuid, token);
  const droplet = await insertDroplet(app.guid);
  const res = await api("PATCH", `/v3/apps/${app.guid}/relationships/current_droplet`, { token, body: { data: { guid: droplet } } });
  if (res.status !== 200) throw new Error(`set droplet failed: ${res.status} ${JSON.stringify(res.json)}`);
  return { ...app, droplet };
}

/** diego_docker on, a space, and a developer who is a member of it: the start of most app tests. */
export async function dockerSpaceWithDeveloper() {
  await setDocker(true);
  const space = await createSpace();
  const dev = await createUser();
  await addDeveloper(dev.guid, space.guid);
  return { space, dev };
}
