/**
 * @module Reading an instance's rotated log files (berth-init writes NAME,
 * rotating to NAME.1 … NAME.K) from a saved cursor, so lines an offline agent
 * did not ship are read later from disk. A cursor names a file by inode, so it
 * survives rotation; a line cut by a rotation comes out as two lines.
 *
 * The io directory belongs to the container's root, so its names are the
 * app's to choose: every file is opened without following a symlink (the
 * directories above it are the agent's) and without blocking on a FIFO, and
 * read only if it is a regular file.
 */
import { constants } from "node:fs";
import { open, readdir, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { MAX_LOG_LINE_BYTES } from "../../shared/protocol/logs";

export interface Cursor {
  inode: number;
  offset: number;
}

export interface ReadResult {
  lines: string[];
  cursor: Cursor | null;
}

interface LogFile {
  path: string;
  inode: number;
  size: number;
}

/** Opens a log file of the io directory if it is a regular file, else null (gone, a symlink, a FIFO…). */
async function openLogFile(path: string): Promise<FileHandle | null> {
  const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK).catch(() => null);
  if (fh && !(await fh.stat()).isFile()) {
    await fh.close();
    return null;
  }
  return fh;
}

/** The log's files, oldest first: NAME.K … NAME.1, NAME. */
async function rotationOrder(dir: string, name: string): Promise<LogFile[]> {
  const entries: string[] = await readdir(dir).catch((e: NodeJS.ErrnoException) => (e.code === "ENOENT" ? [] : Promise.reject(e)));
  const rotated = entries
    .map((e) => ({ e, n: e.startsWith(`${name}.`) ? Number(e.slice(name.length + 1)) : NaN }))
    .filter((x) => Number.isInteger(x.n) && x.n > 0)
    .sort((a, b) => b.n - a.n)
    .map((x) => x.e);
  const files = [];
  for (const f of [...rotated, ...(entries.includes(name) ? [name] : [])]) {
    const fh = await openLogFile(join(dir, f));
    if (!fh) continue;
    const s = await fh.stat();
    await fh.close();
    files.push({ path: join(dir, f), inode: s.ino, size: s.size });
  }
  return files;
}

/** Splits complete lines off `text`; returns them and how many bytes they used. */
export function completeLines(buf: Buffer, final: boolean, maxLineBytes = MAX_LOG_LINE_BYTES): { lines: string[]; used: number } {
  const lines: string[] = [];
  let start = 0;
  for (;;) {
    const nl = buf.indexOf(0x0a, start);
    if (nl === -1) break;
    lines.push(buf.subarray(start, nl).toString("utf8"));
    start = nl + 1;
  }
  // A file that will not grow any more, or a line longer than any we keep, ends here.
  if (start < buf.length && (final || buf.length - start >= maxLineBytes)) {
    lines.push(buf.subarray(start).toString("utf8"));
    start = buf.length;
  }
  return { lines, used: start };
}

/** Reads what was written after `cursor` (null: from the oldest file kept), at most `maxBytes`. */
export async function readSince(dir: string, name: string, cursor: Cursor | null, maxBytes = 1 << 20): Promise<ReadResult> {
  const files = await rotationOrder(dir, name);
  if (files.length === 0) return { lines: [], cursor };
  let i = cursor ? files.findIndex((f) => f.inode === cursor.inode) : 0;
  // The cursor's file rotated away entirely: what it held is gone; go on from the oldest kept.
  let offset = cursor && i !== -1 ? cursor.offset : 0;
  if (i === -1) i = 0;
  const lines: string[] = [];
  let budget = maxBytes;
  let next: Cursor = { inode: files[i]!.inode, offset };
  for (; i < files.length && budget > 0; i++, offset = 0) {
    const f = files[i]!;
    const newest = i === files.length - 1;
    const want = Math.min(f.size - offset, budget);
    if (want > 0) {
      const fh = await openLogFile(f.path);
      // Replaced since it was listed by something that is not a log file: nothing more to read here.
      if (!fh || (await fh.stat()).ino !== f.inode) {
        await fh?.close();
        break;
      }
      try {
        const buf = Buffer.alloc(want);
        const { bytesRead } = await fh.read(buf, 0, want, offset);
        const got = completeLines(buf.subarray(0, bytesRead), !newest && offset + bytesRead >= f.size);
        lines.push(...got.lines);
        offset += got.used;
        budget -= got.used;
        if (got.used < bytesRead) {
          next = { inode: f.inode, offset };
          break;
        }
      } finally {
        await fh.close();
      }
    }
    next = { inode: f.inode, offset };
    if (offset < f.size) break;
  }
  return { lines, cursor: next };
}
