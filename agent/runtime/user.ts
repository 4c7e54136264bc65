/**
 * @module Resolves the run user (docs/architecture.md, rule 5: "name or uid[:gid]") against
 * the image's /etc/passwd and /etc/group, as Docker and Garden do: a name must
 * exist in passwd; a numeric uid need not (it then runs with gid 0 unless one
 * is given); the group part may be a name or a number; supplementary groups
 * are the groups listing the user by name. Pure: the caller reads the files.
 */

export interface ResolvedUser {
  uid: number;
  gid: number;
  additionalGids: number[];
  home: string;
}

export class UserResolutionError extends Error {
  override readonly name = "UserResolutionError";
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}
interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

const ID = /^\d+$/;
const MAX_ID = 0xffffffff - 1;

function parseId(text: string): number | null {
  if (!ID.test(text)) return null;
  const n = Number(text);
  return n <= MAX_ID ? n : null;
}

/** Lines that do not parse are skipped, as libc does. */
export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of text.split("\n")) {
    const f = line.split(":");
    if (f.length < 7 || line.startsWith("#")) continue;
    const uid = parseId(f[2]!);
    const gid = parseId(f[3]!);
    if (uid === null || gid === null || f[0] === "") continue;
    out.push({ name: f[0]!, uid, gid, home: f[5]! });
  }
  return out;
}

export function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const line of text.split("\n")) {
    const f = line.split(":");
    if (f.length < 4 || line.startsWith("#")) continue;
    const gid = parseId(f[2]!);
    if (gid === null || f[0] === "") continue;
    out.push({ name: f[0]!, gid, members: f[3]!.split(",").filter((m) => m !== "") });
  }
  return out;
}

/**
 * `user` is "", "name", "uid", "name:group", "uid:gid" (either side name or
 * number); "" means root. Missing files count as empty.
 */
export function resolveUser(user: string, passwdText: string, groupText: string): ResolvedUser {
  const passwd = parsePasswd(passwdText);
  const groups = parseGroup(groupText);
  const [userPart = "", groupPart, ...rest] = user.split(":");
  if (rest.length > 0) throw new UserResolutionError(`invalid user "${user}": more than one ":"`);

  let uid: number;
  let gid: number;
  let home = "/";
  let name: string | null = null;
  const numericUid = parseId(userPart);
  if (userPart === "") {
    uid = 0;
    gid = 0;
    const root = passwd.find((p) => p.uid === 0);
    if (root) ({ gid, home, name } = root);
  } else if (numericUid !== null) {
    uid = numericUid;
    const entry = passwd.find((p) => p.uid === numericUid);
    gid = entry?.gid ?? 0;
    home = entry?.home ?? "/";
    name = entry?.name ?? null;
  } else {
    const entry = passwd.find((p) => p.name === userPart);
    if (!entry) throw new UserResolutionError(`unable to find user ${userPart}: no matching entries in passwd file`);
    ({ uid, gid, home, name } = entry);
  }

  if (groupPart !== undefined) {
    if (groupPart === "") throw new UserResolutionError(`invalid user "${user}": empty group`);
    const numericGid = parseId(groupPart);
    if (numericGid !== null) gid = numericGid;
    else {
      const g = groups.find((e) => e.name === groupPart);
      if (!g) throw new UserResolutionError(`unable to find group ${groupPart}: no matching entries in group file`);
      gid = g.gid;
    }
  }

  const additionalGids = name === null ? [] : groups.filter((g) => g.members.includes(name!)).map((g) => g.gid);
  return { uid, gid, additionalGids: [...new Set(additionalGids)].filter((g) => g !== gid), home };
}
