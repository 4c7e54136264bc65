/** @module Pure parsers for the cf CLI's size flags (`-m 256M`, `-k 1G`). */

/** "256M", "256MB", "1G", "1GB", "512" (megabytes) → megabytes. */
export function parseMegabytes(value: string): number {
  const m = /^(\d+)\s*(M|MB|G|GB|T|TB)?$/i.exec(value.trim());
  if (!m) throw new Error(`Invalid size '${value}': use a number with M or G, e.g. 256M or 1G`);
  const n = Number(m[1]);
  const unit = (m[2] ?? "M").toUpperCase()[0];
  const mb = unit === "G" ? n * 1024 : unit === "T" ? n * 1024 * 1024 : n;
  if (mb <= 0) throw new Error(`Invalid size '${value}': must be greater than zero`);
  return mb;
}

export function formatMegabytes(mb: number): string {
  return mb >= 1024 && mb % 1024 === 0 ? `${mb / 1024}G` : `${mb}M`;
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes}B`;
  const units = ["K", "M", "G", "T"];
  let v = bytes;
  let i = -1;
  do {
    v /= 1024;
    i++;
  } while (v >= 1024 && i < units.length - 1);
  return `${v.toFixed(1)}${units[i]}`;
}
