/**
 * @module One user namespace per id range, held open by an fd, for
 * idmapped mounts (mount_setattr(MOUNT_ATTR_IDMAP) takes a userns fd and
 * reads the mapping from it). The addon clones a child into a new user
 * namespace, writes its maps and keeps /proc/PID/ns/user open; the child
 * exits at once, the fd keeps the namespace alive. Shared by every
 * container with the same range.
 */
import { closeSync } from "node:fs";
import { native } from "../native/index";
import { idMapLine, type IdRange } from "../runtime/ids";

export class UserNamespacePool {
  private readonly fds = new Map<string, number>();

  fdFor(range: IdRange): number {
    const key = `${range.hostId}:${range.size}`;
    let fd = this.fds.get(key);
    if (fd === undefined) {
      const line = idMapLine(range);
      fd = native.fsUserNamespace(line, line);
      this.fds.set(key, fd);
    }
    return fd;
  }

  close(): void {
    for (const fd of this.fds.values()) closeSync(fd);
    this.fds.clear();
  }
}
