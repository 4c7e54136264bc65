/**
 * @module Staging one build in the Worker (CF's Docker builder, done as a
 * metadata resolution): read the package, decide where to resolve, open the
 * sealed password, resolve the image for linux/amd64 with the shared client
 * and the global fetch, apply CF's staging rules, and record the outcome in
 * one conditional write. Runs inside the Stager Durable Object, never on a
 * request. The password lives only in this function's memory: it is not
 * logged, and no error message carries it.
 *
 * Staging tells the app's logs what it does, as STG lines (CF's builder
 * output): the image it resolves, the digest, "Staging complete" or why it
 * failed. They are written before the build's state changes: the cf CLI
 * shows STG lines only while the build is STAGING and stops reading when it
 * sees the outcome.
 */
import type { Credentials, ResolvedImage } from "../../shared/protocol/image";
import { RegistryError } from "../../shared/registry/errors";
import { DEFAULT_PLATFORM } from "../../shared/registry/platform";
import { displayReference, parseReference, type ImageReference } from "../../shared/registry/reference";
import { resolveImage } from "../../shared/registry/resolve";
import { registrySchemes } from "../../shared/registry/session";
import { listedRegistries } from "../../shared/registry/targets";
import { executionMetadata, processTypes, stagingFailure } from "../../shared/staging/execution-metadata";
import { compressedImageBytes, imageOverQuota } from "../../shared/staging/image-size";
import { openSecret, packageAad, SecretError } from "../crypto/secrets";
import { getStagingInput, markFailed, markForCell, markStaged, type StagingInput } from "../db/builds";
import { getProcessByType } from "../db/processes";
import { getRegistryAccess } from "../db/registry-access";
import type { BatchItem } from "drizzle-orm/batch";
import type { Db } from "../env";
import { newGuid } from "../http/ids";
import { initialStagingLocation, needsCell } from "./location";

export interface StagingDeps {
  db: Db;
  fetch: typeof fetch;
  encryptionKey: string;
  /** The build's time budget; aborting it fails the build with a timeout. */
  signal: AbortSignal;
  requestTimeoutMs: number;
  now: () => Date;
  log: (entry: Record<string, unknown>) => void;
  stg: StagingLines;
}

/** Writes STG lines into an app's logs (stderr for a failure). */
export type StagingLines = (appGuid: string, texts: string[], stream?: "stdout" | "stderr") => Promise<void>;

export type StagingOutcome =
  | { state: "STAGED"; dropletGuid: string }
  | { state: "FAILED"; error: string }
  /** Left STAGING for a cell's staging task. */
  | { state: "CELL" }
  /** Nothing to do: the build is gone or already finished. */
  | { state: "DONE" };

/** CC's build error text: "<error id> - <description>", StagingError's description being "Staging error: %s". */
export const stagingErrorText = (message: string) => `StagingError - Staging error: ${message}`;

export async function stageBuild(buildGuid: string, deps: StagingDeps): Promise<StagingOutcome> {
  const { db, now, log } = deps;
  const input = await getStagingInput(db, buildGuid);
  if (!input || input.state !== "STAGING") return { state: "DONE" };

  const fail = (message: string, code: string) => failStaging(db, input, message, code, { now, log, stg: deps.stg });
  const toCell = async (reason: string): Promise<StagingOutcome> => {
    const changed = await markForCell(db, buildGuid, now());
    log({ level: "info", msg: "staging handed to a cell", build_guid: buildGuid, reason, changed });
    return changed ? { state: "CELL" } : { state: "DONE" };
  };

  let ref: ImageReference;
  try {
    ref = parseReference(input.image);
  } catch (e) {
    if (e instanceof RegistryError) return fail(e.message, e.code);
    throw e;
  }
  await deps.stg(input.appGuid, [`Staging app with Docker image ${displayReference(ref)}`]);
  const access = await getRegistryAccess(db);
  if (initialStagingLocation(ref.host, access) === "cell") return toCell("cell_only_registries");

  let credentials: Credentials | undefined;
  if (input.username !== null && input.passwordEncrypted !== null) {
    try {
      credentials = { username: input.username, password: await openSecret(deps.encryptionKey, input.passwordEncrypted, packageAad(input.packageGuid)) };
    } catch (e) {
      if (!(e instanceof SecretError)) throw e;
      return fail("the stored registry password cannot be decrypted (was ENCRYPTION_KEY changed?); create the package again", "secret");
    }
  }

  let resolved;
  try {
    resolved = await resolveImage(ref, {
      fetch: deps.fetch,
      credentials,
      schemes: registrySchemes(ref.host, access.insecure_registries, { canSkipTlsVerify: false }),
      listedRegistries: listedRegistries(access),
      platform: DEFAULT_PLATFORM,
      signal: deps.signal,
      requestTimeoutMs: deps.requestTimeoutMs,
      now,
    });
  } catch (e) {
    if (!(e instanceof RegistryError)) throw e;
    if (needsCell(e, ref.host, access)) return toCell(e.code);
    return fail(e.message, e.code);
  }

  return completeStaging(db, input, ref, resolved, { now, log, stg: deps.stg });
}

/** What finishing a build needs besides the database. */
export type Finishing = Pick<StagingDeps, "now" | "log" | "stg">;

/**
 * Fails a STAGING build with CC's error text; DONE when it had already finished.
 * `alongside` (version bumps) commits in the same batch as the outcome.
 */
export async function failStaging(
  db: Db, input: Pick<StagingInput, "buildGuid" | "appGuid">, message: string, code: string, { now, log, stg }: Finishing, alongside: BatchItem<"sqlite">[] = [],
): Promise<StagingOutcome> {
  const buildGuid = input.buildGuid;
  const error = stagingErrorText(message);
  await stg(input.appGuid, [`Staging failed: ${message}`], "stderr");
  const changed = await markFailed(db, buildGuid, error, now(), alongside);
  log({ level: "info", msg: "staging failed", build_guid: buildGuid, code, changed });
  return changed ? { state: "FAILED", error } : { state: "DONE" };
}

/**
 * CF's staging completion for a resolved image (staging_completion_handler.rb):
 * the build fails when nothing says what to run or when the image cannot fit
 * the web process's disk quota, else the droplet is written
 * and the build STAGED. Shared by Worker staging and cells' staging results;
 * `alongside` (version bumps) commits in the same batch as the outcome.
 */
export async function completeStaging(
  db: Db,
  input: StagingInput,
  ref: ImageReference,
  resolved: ResolvedImage,
  finishing: Finishing,
  alongside: BatchItem<"sqlite">[] = [],
): Promise<StagingOutcome> {
  const { now, log, stg } = finishing;
  const buildGuid = input.buildGuid;
  const bytes = compressedImageBytes(resolved.layers);
  await stg(input.appGuid, [`Image resolved: ${displayReference(ref)}`, `Digest: ${resolved.manifest_digest} (${resolved.layers.length} layers, ${bytes} bytes compressed)`]);
  const web = await getProcessByType(db, input.appGuid, "web");
  const failure = stagingFailure(resolved.config, web?.command);
  if (failure) return failStaging(db, input, failure, "start_command", finishing, alongside);
  // The image counts against the disk quota: one whose compressed layers alone pass it can never start.
  const tooBig = web ? imageOverQuota(bytes, web.diskInMb) : null;
  if (tooBig) return failStaging(db, input, tooBig, "image_over_disk_quota", finishing, alongside);
  await stg(input.appGuid, ["Staging complete"]);

  const dropletGuid = newGuid();
  const staged = await markStaged(db, {
    guid: dropletGuid,
    appGuid: input.appGuid,
    buildGuid,
    packageGuid: input.packageGuid,
    image: displayReference(ref),
    resolved,
    executionMetadata: executionMetadata(resolved.config),
    processTypes: processTypes(resolved.config),
  }, now(), alongside);
  log({ level: "info", msg: "staged", build_guid: buildGuid, droplet_guid: dropletGuid, manifest_digest: resolved.manifest_digest, changed: staged });
  return staged ? { state: "STAGED", dropletGuid } : { state: "DONE" };
}
