/**
 * The filesystem half of the native addon (src/fs.cc). Paths called `rel` are
 * clean relative paths resolved inside `root` (an fd from fsOpenRoot) with
 * openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS): nothing can be reached
 * outside the root, whatever symlinks the tree holds. Failures throw a
 * NativeError (./native).
 */

export interface EntryMeta {
  uid: number;
  gid: number;
  /** Permission bits including setuid/setgid/sticky; ignored for symlinks. */
  mode: number;
  atimeNs?: bigint;
  mtimeNs?: bigint;
  /** Set in order after chown and before chmod; ignored for symlinks. */
  xattrs?: Array<[name: string, value: Buffer]>;
}

export interface NativeFs {
  fsOpenRoot(path: string): number;
  fsMkdir(root: number, rel: string, mode: number): void;
  /** Returns an fd open for writing (close it with fs.closeSync). */
  fsCreateFile(root: number, rel: string): number;
  fsSymlink(root: number, rel: string, target: string): void;
  fsLink(root: number, rel: string, target: string): void;
  fsMknod(root: number, rel: string, kind: "fifo" | "whiteout"): void;
  fsRemove(root: number, rel: string): void;
  /** Returns the xattr names the filesystem refused with ENOTSUP/EPERM. */
  fsSetMeta(root: number, rel: string, meta: EntryMeta): string[];
  fsSetXattr(root: number, rel: string, name: string, value: Buffer): void;
  /** A user namespace fd with the given /proc/PID/uid_map and gid_map contents. */
  fsUserNamespace(uidMap: string, gidMap: string): number;
  fsMountIdmapped(source: string, target: string, usernsFd: number): void;
  /** lowers are top-most first; upper "" makes a read-only overlay of the lowers alone. */
  fsMountOverlay(target: string, lowers: string[], upper: string, work: string): void;
  /**
   * The same overlay for kernels before 6.8 (no `lowerdir+`): lowers are paths
   * relative to dir, joined into one lowerdir; all options must fit a page.
   */
  fsMountOverlayJoined(dir: string, target: string, lowers: string[], upper: string, work: string): void;
  /** Resolves to the loop device; it detaches itself when the filesystem is unmounted. Runs off the main thread. */
  fsLoopMount(file: string, target: string, fstype: string): Promise<string>;
  fsUnmount(target: string, detach: boolean): void;
  /** Every xattr of path itself (a symlink is not followed). */
  fsGetXattrs(path: string): Record<string, Buffer>;
}
