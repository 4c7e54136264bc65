/**
 * Images made to bloat what the control plane stores (issue 15, item 8),
 * inside workerd: the Worker's staging of an image whose config has 100 000
 * Env entries fails the build naming the cap and writes no droplet; a cell
 * posting such an image as its staging result is refused and nothing is
 * stored. The shared client's caps on Node and on cells:
 * test/security/image-config-attacks.test.ts.
 */
import { eq } from "drizzle-orm";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { IMAGE_LIMITS } from "../../../shared/protocol/image";
import * as schema from "../../../worker/db/schema";
import type { StagingRegistries } from "../../support/provided";
import { setDocker, stageImage } from "../../worker/app-fixtures";
import { ADMIN, api, createSpace, db } from "../../worker/support";

const staging: StagingRegistries = inject("stagingRegistries");

beforeAll(async () => {
  await setDocker(true);
  expect((await api("PATCH", "/v3/admin/docker_registry_access", { token: ADMIN, body: { insecure_registries: [staging.bloatedImage] } })).status).toBe(200);
});

describe("bloated images in the Worker", () => {
  it("staging an image whose config has 100 000 Env entries fails the build, naming the cap, and stores no droplet", async () => {
    const space = await createSpace();
    const build = await stageImage(space.guid, `${staging.bloatedImage}/bloat:1`);
    expect(build).toMatchObject({ state: "FAILED", droplet: null });
    expect(build.error).toMatch(new RegExp(`its Env has 100000 entries, more than the ${IMAGE_LIMITS.listEntries} accepted`));
    const [row] = await db().select().from(schema.builds).where(eq(schema.builds.guid, build.guid));
    expect(row!.dropletGuid).toBeNull();
  });
});
