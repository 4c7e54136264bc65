import { describe, expect, it } from "vitest";
import { formatBytes, formatMegabytes, parseMegabytes } from "../../cli/units";
import { renderTable } from "../../cli/output";

describe("size flags", () => {
  it.each([
    ["256M", 256], ["256MB", 256], ["1G", 1024], ["2gb", 2048], ["512", 512], ["1T", 1048576],
  ])("%s is %d MB", (input, mb) => expect(parseMegabytes(input)).toBe(mb));

  it.each(["", "M", "-1M", "1.5G", "12Q", "0M"])("refuses %j", (input) => {
    expect(() => parseMegabytes(input)).toThrow(/Invalid size/);
  });

  it("formats sizes the cf CLI way", () => {
    expect(formatMegabytes(1024)).toBe("1G");
    expect(formatMegabytes(256)).toBe("256M");
    expect(formatBytes(512)).toBe("512B");
    expect(formatBytes(1536)).toBe("1.5K");
    expect(formatBytes(5 * 1024 * 1024)).toBe("5.0M");
  });
});

describe("tables", () => {
  it("aligns columns without borders", () => {
    const out = renderTable(["name", "state"], [["a-long-name", "started"], ["b", "stopped"]]);
    expect(out.split("\n")).toEqual(["name          state", "a-long-name   started", "b             stopped"]);
  });
});
