/** Table tests of where a build is staged (worker/staging/location.ts). */
import { describe, expect, it } from "vitest";
import type { RegistryAccess } from "../../shared/protocol/registry-access";
import { RegistryError } from "../../shared/registry/errors";
import { initialStagingLocation, needsCell } from "../../worker/staging/location";

const access = (a: Partial<RegistryAccess> = {}): RegistryAccess => ({
  version: 1, trusted_ca_certificates: [], insecure_registries: [], cell_only_registries: [], ...a,
});
const CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----";

describe("initialStagingLocation", () => {
  it.each([
    ["ghcr.io", access(), "worker"],
    ["reg.cells:5000", access({ cell_only_registries: ["reg.cells:5000"] }), "cell"],
    ["reg.cells:5001", access({ cell_only_registries: ["reg.cells:5000"] }), "worker"],
    ["10.0.0.5:5000", access({ insecure_registries: ["10.0.0.0/8"] }), "worker"],
    ["10.0.0.5:5000", access({ trusted_ca_certificates: [CA] }), "worker"],
  ] as const)("%s with %o → %s", (host, a, where) => {
    expect(initialStagingLocation(host, a)).toBe(where);
  });
});

describe("needsCell", () => {
  const noAnswer = new RegistryError("unreachable", "x", { noAnswer: true });
  const answered503 = new RegistryError("unreachable", "x");
  it.each([
    ["a TLS registry listed as insecure", new RegistryError("tls_required", "x"), "10.0.0.5:5000", access({ insecure_registries: ["10.0.0.5"] }), true],
    ["no TLS answer while CAs are configured", noAnswer, "reg.corp:443", access({ trusted_ca_certificates: [CA] }), true],
    ["no answer without configured CAs", noAnswer, "reg.corp:443", access(), false],
    ["no answer from an insecure-listed registry", noAnswer, "10.0.0.5:5000", access({ insecure_registries: ["10.0.0.0/8"], trusted_ca_certificates: [CA] }), false],
    ["a 5xx", answered503, "reg.corp:443", access({ trusted_ca_certificates: [CA] }), false],
    ["a refused password", new RegistryError("unauthorized", "x"), "reg.corp:443", access({ trusted_ca_certificates: [CA] }), false],
    ["a timeout", new RegistryError("timeout", "x"), "reg.corp:443", access({ trusted_ca_certificates: [CA] }), false],
  ] as const)("%s → %s", (_name, err, host, a, expected) => {
    expect(needsCell(err, host, a)).toBe(expected);
  });
});
