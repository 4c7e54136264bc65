/**
 * A minimal root filesystem for runtime tests and benchmarks: busybox-static
 * with one symlink per applet, /etc/passwd and /etc/group (root, an `app`
 * user 1000:1000 who is also in `staff`, nobody), /tmp and an app home.
 * Stands in for the image store's overlay until it hands over real rootfs
 * paths. Ownership is shifted into the container's id range with lchown (the
 * brief's simple option; the image store uses idmapped mounts instead), so
 * root's files are root's inside the user namespace.
 */
import { execFileSync } from "node:child_process";
import { chmod, copyFile, lchown, mkdir, readdir, symlink, writeFile, lstat } from "node:fs/promises";
import { join } from "node:path";

export const APP_UID = 1000;
export const APP_GID = 1000;
export const STAFF_GID = 50;

const PASSWD = [
  "root:x:0:0:root:/root:/bin/sh",
  `app:x:${APP_UID}:${APP_GID}:app:/home/app:/bin/sh`,
  "nobody:x:65534:65534:nobody:/nonexistent:/bin/false",
  "",
].join("\n");
const GROUP = ["root:x:0:", `staff:x:${STAFF_GID}:app`, `app:x:${APP_GID}:`, "nogroup:x:65534:", ""].join("\n");

async function chownTree(path: string, hostId: number): Promise<void> {
  const st = await lstat(path);
  await lchown(path, hostId + st.uid, hostId + st.gid);
  if (st.isDirectory()) for (const name of await readdir(path)) await chownTree(join(path, name), hostId);
}

/** Builds the tree at `dir` (created) with ids shifted by `hostId` (the slot's first host id). */
export async function makeBusyboxRootfs(dir: string, hostId: number): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o755 });
  for (const d of ["bin", "etc", "root", "tmp", "proc", "sys", "dev", "home/app", "usr/bin", "usr/sbin", "sbin"])
    await mkdir(join(dir, d), { recursive: true, mode: 0o755 });
  await chmod(join(dir, "tmp"), 0o1777);
  await chmod(join(dir, "root"), 0o700);
  await copyFile("/bin/busybox", join(dir, "bin/busybox"));
  await chmod(join(dir, "bin/busybox"), 0o755);
  const applets = execFileSync("/bin/busybox", ["--list"], { encoding: "utf8" }).split("\n").filter((a) => a && a !== "busybox");
  for (const a of applets) await symlink("busybox", join(dir, "bin", a));
  await writeFile(join(dir, "etc/passwd"), PASSWD, { mode: 0o644 });
  await writeFile(join(dir, "etc/group"), GROUP, { mode: 0o644 });
  await writeFile(join(dir, "etc/root-only"), "secret\n", { mode: 0o600 });
  await chownTree(dir, hostId);
  await lchown(join(dir, "home/app"), hostId + APP_UID, hostId + APP_GID);
}
