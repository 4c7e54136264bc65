/** @module The admin's registry access as cells receive it with their work (docs/architecture.md, rule 3). */
import { z } from "zod";

export const registryAccessSchema = z.strictObject({
  version: z.number().int().min(0),
  /** PEM certificates to trust in addition to the system store. */
  trusted_ca_certificates: z.array(z.string()),
  /** Hosts, IPs or CIDRs (optionally with :port) pulled over plain HTTP or unverified TLS. */
  insecure_registries: z.array(z.string()),
  /** Registries only cells can reach: staging for them runs on a cell. */
  cell_only_registries: z.array(z.string()),
});

export type RegistryAccess = z.infer<typeof registryAccessSchema>;
