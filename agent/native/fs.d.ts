/**
 * The filesystem half of the native addon (src/fs.cc): user namespaces and
 * mounts for root filesystems. Failures throw a NativeError (./native).
 */

export interface NativeFs {
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
  /**
   * A pipe holding at least `capacity` bytes (up to /proc/sys/fs/pipe-max-size
   * unprivileged), both ends close-on-exec, the read end non-blocking.
   */
  fsPipe(capacity: number): { read: number; write: number; capacity: number };
  /** Every xattr of path itself (a symlink is not followed). */
  fsGetXattrs(path: string): Record<string, Buffer>;
}
