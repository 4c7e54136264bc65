/**
 * Fixtures for the app API tests: the diego_docker flag, apps made through the
 * API, and STAGED droplets inserted straight into D1 (staging is /v3/builds,
 * tested on its own; these tests only need a droplet to point at).
 */
import { runDurableObjectAlarm } from "cloudflare:test";
import { env } from "cloudflare:workers";
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

export async function insertDroplet(appGuid: string, opts: { state?: string; processTypes?: Record<string, string>; packageGuid?: string } = {}) {
  const guid = crypto.randomUUID();
  await db().insert(schema.droplets).values({
    guid, appGuid, packageGuid: opts.packageGuid ?? null, state: opts.state ?? "STAGED", image: "registry.test/app:1",
    manifestDigest: `sha256:${"a".repeat(64)}`, executionMetadata: "{}",
    processTypes: opts.processTypes ?? { web: "/bin/app --serve" }, imageSpec: {},
  });
  return guid;
}

/** An app in `spaceGuid` and a docker package of `image` for it, made through the API. */
export async function dockerPackage(spaceGuid: string, image: string, credentials?: { username: string; password: string }, token = ADMIN) {
  const app = await makeApp(spaceGuid, token);
  const res = await api("POST", "/v3/packages", {
    token, body: { type: "docker", relationships: { app: { data: { guid: app.guid } } }, data: { image, ...credentials } },
  });
  if (res.status !== 201) throw new Error(`package create failed: ${res.status} ${JSON.stringify(res.json)}`);
  return { app, pkg: res.json as { guid: string } };
}

export interface BuildJson { guid: string; state: string; error: string | null; droplet: { guid: string } | null; package: { guid: string }; links: Record<string, { href: string }> }

/** Fires the build's Stager alarm until the build leaves STAGING (the alarm may also fire on its own). */
export async function finishBuild(buildGuid: string, token = ADMIN): Promise<BuildJson> {
  const stub = env.STAGER.get(env.STAGER.idFromName(buildGuid));
  for (let i = 0; i < 200; i++) {
    await runDurableObjectAlarm(stub);
    const res = await api("GET", `/v3/builds/${buildGuid}`, { token });
    if (res.status !== 200) throw new Error(`build read failed: ${res.status} ${JSON.stringify(res.json)}`);
    const build = res.json as BuildJson;
    if (build.state !== "STAGING") return build;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`build ${buildGuid} still STAGING`);
}

/** Creates an app, a package of `image` and a build for it in `spaceGuid`, and fires its Stager until the build finishes. */
export async function stageImage(spaceGuid: string, image: string, token = ADMIN): Promise<BuildJson> {
  const { pkg } = await dockerPackage(spaceGuid, image, undefined, token);
  const created = await api("POST", "/v3/builds", { token, body: { package: { guid: pkg.guid } } });
  if (created.status !== 201) throw new Error(`build create failed: ${created.status} ${JSON.stringify(created.json)}`);
  return finishBuild((created.json as { guid: string }).guid, token);
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
