/** The cell agent's config: the layer cache budget and egress settings, their defaults and refusals. */
import { describe, expect, it } from "vitest";
import { loadAgentConfig } from "../../agent/config";

const base = {
  api_url: "http://127.0.0.1:8787",
  name: "cell-1",
  address: "198.18.0.1",
  state_dir: "/var/lib/berth",
  capacity: { memory_mb: 1024, disk_mb: 10240, containers: 10 },
};

describe("agent config", () => {
  it("defaults the layer cache budget to half the state dir's filesystem and opens no private network", async () => {
    const c = await loadAgentConfig(undefined, base);
    expect(c.layer_cache_max_bytes).toBe("50%");
    expect(c.allow_networks).toEqual([]);
    expect(c.deny_networks).toEqual([]);
  });

  it("takes the budget in bytes or as a percentage, and allowed networks", async () => {
    expect((await loadAgentConfig(undefined, { ...base, layer_cache_max_bytes: 5_000_000 })).layer_cache_max_bytes).toBe(5_000_000);
    expect((await loadAgentConfig(undefined, { ...base, layer_cache_max_bytes: "12.5%" })).layer_cache_max_bytes).toBe("12.5%");
    expect((await loadAgentConfig(undefined, { ...base, allow_networks: ["10.1.0.0/16"] })).allow_networks).toEqual(["10.1.0.0/16"]);
  });

  it.each([["lots"], ["150%"], [-1]])("refuses the layer cache budget %j, naming the field", async (value) => {
    await expect(loadAgentConfig(undefined, { ...base, layer_cache_max_bytes: value })).rejects.toThrow(/agent config: layer_cache_max_bytes/);
  });
});
