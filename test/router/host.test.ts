import { describe, expect, it } from "vitest";
import { routeKey } from "../../agent/router/host";

describe("routeKey", () => {
  it.each([
    ["app.apps.test", "app.apps.test"],
    ["App.Apps.TEST", "app.apps.test"],
    ["app.apps.test:8080", "app.apps.test"],
    ["app.apps.test.", "app.apps.test"],
    ["APP.apps.test.:80", "app.apps.test"],
    ["[::1]:8080", "[::1]"],
    ["[::1]", "[::1]"],
    ["10.0.0.1:80", "10.0.0.1"],
    ["", ""],
  ])("%s → %s", (header, key) => {
    expect(routeKey(header)).toBe(key);
  });

  it("is empty without a Host header", () => {
    expect(routeKey(undefined)).toBe("");
  });
});
