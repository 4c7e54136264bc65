/**
 * @module Instance specs as `instances.spec` keeps them: the protocol spec
 * without pull credentials, plus the package they come from. The registry
 * password stays sealed on the package; it is opened only when a cell's
 * desired set is built, so no plain password sits in D1.
 */
import { z } from "zod";
import { instanceSpecSchema, type InstanceSpec } from "../../shared/protocol/instance";

export const storedSpecSchema = instanceSpecSchema.extend({ package_guid: z.string().nullable() });

export type StoredSpec = z.infer<typeof storedSpecSchema>;

export function toStoredSpec(spec: InstanceSpec, packageGuid: string | null): StoredSpec {
  const { image, ...rest } = spec;
  const { credentials: _never, ...publicImage } = image;
  return { ...rest, image: publicImage, package_guid: packageGuid };
}

/** Parses a stored spec; a row that does not parse is a bug worth failing loudly on. */
export function parseStoredSpec(instanceGuid: string, value: unknown): StoredSpec {
  const r = storedSpecSchema.safeParse(value);
  if (!r.success) throw new Error(`instance ${instanceGuid} has a malformed spec: ${r.error.message}`);
  return r.data;
}
