import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";

describe("worker", () => {
  it("answers an unknown path with the CC error envelope", async () => {
    const res = await exports.default.fetch("https://berth.test/v3/nope");
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ errors: [{ code: 10000, title: "CF-NotFound", detail: "Unknown request" }] });
  });
});
