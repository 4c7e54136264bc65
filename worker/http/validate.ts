/**
 * @module Request parsing: bodies and queries go through zod; any failure is a
 * 422 CF-UnprocessableEntity that names the field, never a 500.
 */
import type { Context } from "hono";
import { z } from "zod";
import { MAX_STAGING_RESULT_BYTES } from "../../shared/protocol/staging";
import type { AppEnv } from "../env";
import { badRequest, tooLarge, unprocessable } from "../errors";

/** Largest JSON body accepted (a PEM bundle for registry access is the biggest legitimate one); a cell's staging result is held to it too. */
export const MAX_BODY_BYTES = MAX_STAGING_RESULT_BYTES;

export function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((i) => {
      const path = i.path.join(".");
      if (i.code === "unrecognized_keys") {
        const keys = i.keys.map((k) => (path ? `${path}.${k}` : k));
        return `Unknown field(s): ${keys.map((k) => `'${k}'`).join(", ")}`;
      }
      return path ? `${path}: ${i.message}` : i.message;
    })
    .join(", ");
}

export async function parseJson<S extends z.ZodType>(c: Context<AppEnv>, schema: S): Promise<z.output<S>> {
  const declared = Number(c.req.header("content-length") ?? "0");
  if (declared > MAX_BODY_BYTES) throw tooLarge(MAX_BODY_BYTES);
  const text = await c.req.text();
  if (new TextEncoder().encode(text).byteLength > MAX_BODY_BYTES) throw tooLarge(MAX_BODY_BYTES);
  let body: unknown;
  try {
    body = text.length === 0 ? {} : JSON.parse(text);
  } catch (e) {
    throw badRequest(e instanceof Error ? e.message : "invalid JSON");
  }
  const result = schema.safeParse(body);
  if (!result.success) throw unprocessable(describeIssues(result.error));
  return result.data;
}

export function parseQuery<S extends z.ZodType>(c: Context<AppEnv>, schema: S): z.output<S> {
  const result = schema.safeParse(c.req.query());
  if (!result.success) throw unprocessable(describeIssues(result.error));
  return result.data;
}

/** `names=a,b` style list filters. */
export const commaList = z
  .string()
  .transform((s) => s.split(",").filter((x) => x.length > 0));

export const pageQuery = {
  page: z.coerce.number().int().min(1).default(1),
  per_page: z.coerce.number().int().min(1).max(5000).default(50),
};

/** CC's rule for organization and space names is 1..255 characters; Berth also keeps them printable and trimmed. */
export const resourceName = z
  .string()
  .min(1)
  .max(255)
  .regex(/^\S(.*\S)?$/, "must not start or end with whitespace")
  .regex(/^[^\p{Cc}]*$/u, "must not contain control characters");
