/**
 * @module The agent protocol's version. Every message a cell or router sends
 * carries `protocol: PROTOCOL_VERSION`, and every desired set the control plane
 * answers carries it too, so either side can refuse a peer it does not speak.
 * Fields may be added within a version; a field never changes meaning.
 */
import { z } from "zod";

export const PROTOCOL_VERSION = 1 as const;

export const protocolField = z.literal(PROTOCOL_VERSION, { error: `protocol must be ${PROTOCOL_VERSION}` });
