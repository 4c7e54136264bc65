/**
 * @module The image counts against the process's disk quota, as Garden's
 * DiskLimitScopeTotal counts it: an image whose layers alone are bigger
 * than `disk_in_mb` can never run. Staging and placement know only the
 * compressed sizes the manifest lists, a lower bound of what the layers take
 * unpacked; the cell enforces the unpacked size while it streams them.
 */

const MIB = 1024 * 1024;

/** "3.0 GiB", "700.0 MiB", "12.5 KiB", "12 B": sizes in errors people read. */
export function formatSize(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`;
}

/** The error naming both sizes when an image of `imageBytes` cannot fit a disk quota of `diskMb`, else null. */
export function imageOverQuota(imageBytes: number, diskMb: number, what = "the image's layers are"): string | null {
  if (imageBytes <= diskMb * MIB) return null;
  return `${what} ${formatSize(imageBytes)}, more than the disk quota of ${diskMb}M (${formatSize(diskMb * MIB)})`;
}

/** The compressed size the manifest lists: what staging and placement can count. */
export const compressedImageBytes = (layers: readonly { size: number }[]): number => layers.reduce((n, l) => n + l.size, 0);
