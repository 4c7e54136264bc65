/**
 * @module Enrolling cells and routers. An admin makes a one-time enrollment
 * token (`POST /v3/cells/enrollment_tokens`), the host trades it once for its
 * own long-lived credential (`POST /v3/cells/register`) before it expires
 * (1 h by default). Admins list tokens with their state and revoke unused
 * ones (`DELETE /v3/cells/enrollment_tokens/:guid`).
 */
import { z } from "zod";
import { protocolField } from "./version";
import { resourcesSchema } from "./resources";

export const enrollmentKindSchema = z.enum(["cell", "router"]);

export const enrollmentTokenRequestSchema = z.strictObject({ kind: enrollmentKindSchema });

/** An enrollment token as admins list it (`GET /v3/cells/enrollment_tokens`); never the token itself. */
export const enrollmentTokenInfoSchema = z.strictObject({
  guid: z.string(),
  kind: enrollmentKindSchema,
  /** `active` enrolls one cell or router; `used`, `revoked` and `expired` enroll nothing. */
  state: z.enum(["active", "used", "revoked", "expired"]),
  created_at: z.string(),
  expires_at: z.string(),
  used_at: z.string().nullable(),
  revoked_at: z.string().nullable(),
});

/** `POST /v3/cells/enrollment_tokens`'s answer: the info, and the token, shown this once (only its hash is kept). */
export const enrollmentTokenSchema = enrollmentTokenInfoSchema.extend({ token: z.string().min(1) });

const name = z.string().min(1).max(255).regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, "must be letters, digits, '.', '_' or '-'");

/** Fields every registration has; the token's kind decides which schema below applies. */
export const registrationBaseSchema = z.object({
  protocol: protocolField,
  enrollment_token: z.string().min(1),
});

export const cellRegistrationSchema = z.strictObject({
  protocol: protocolField,
  enrollment_token: z.string().min(1),
  name,
  zone: name,
  /** Where routers reach the cell's published host ports (IP or hostname). */
  address: z.string().min(1).max(255),
  capacity: resourcesSchema,
});

export const routerRegistrationSchema = z.strictObject({
  protocol: protocolField,
  enrollment_token: z.string().min(1),
  name,
});

export const registrationResponseSchema = z.strictObject({
  protocol: protocolField,
  kind: enrollmentKindSchema,
  guid: z.string().min(1),
  name: z.string(),
  /** The bearer token the cell or router uses from now on. Shown once. */
  credential: z.string().min(1),
});

export type EnrollmentKind = z.infer<typeof enrollmentKindSchema>;
export type EnrollmentToken = z.infer<typeof enrollmentTokenSchema>;
export type CellRegistration = z.infer<typeof cellRegistrationSchema>;
export type RouterRegistration = z.infer<typeof routerRegistrationSchema>;
export type RegistrationResponse = z.infer<typeof registrationResponseSchema>;
