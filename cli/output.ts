/** @module Output in the cf CLI's manner: a status line, then borderless aligned tables; or JSON. */
import Table from "cli-table3";

export interface Out {
  json: boolean;
  /** A human line (suppressed with --json). */
  say(line?: string): void;
  /** A table of rows with a header (or the rows as JSON objects with --json). */
  table(header: string[], rows: (string | number)[][]): void;
  /** Machine-readable result: printed only with --json. */
  data(value: unknown): void;
}

export function renderTable(header: string[], rows: (string | number)[][]): string {
  const t = new Table({
    head: header,
    chars: {
      top: "", "top-mid": "", "top-left": "", "top-right": "", bottom: "", "bottom-mid": "",
      "bottom-left": "", "bottom-right": "", left: "", "left-mid": "", mid: "", "mid-mid": "",
      right: "", "right-mid": "", middle: "   ",
    },
    style: { head: [], border: [], "padding-left": 0, "padding-right": 0 },
  });
  for (const r of rows) t.push(r.map(String));
  return t.toString().split("\n").map((l) => l.trimEnd()).join("\n");
}

export function makeOut(json: boolean, write: (s: string) => void = (s) => process.stdout.write(s)): Out {
  return {
    json,
    say(line = "") {
      if (!json) write(line + "\n");
    },
    table(header, rows) {
      if (!json) write(renderTable(header, rows) + "\n");
    },
    data(value) {
      if (json) write(JSON.stringify(value, null, 2) + "\n");
    },
  };
}
