/**
 * @module `WWW-Authenticate` parsing (RFC 7235): a header may hold several
 * challenges, and quoted parameter values contain commas (`scope="repository:a:pull,push"`),
 * so splitting on commas is wrong.
 *
 * @example
 * parseChallenges('Bearer realm="https://auth.example/token",service="reg"')
 * // [{ scheme: "bearer", params: { realm: "https://auth.example/token", service: "reg" } }]
 */

export interface Challenge {
  /** Lowercased: "bearer", "basic", … */
  scheme: string;
  /** Parameter names lowercased, values unquoted. */
  params: Record<string, string>;
}

const TOKEN = /[!#$%&'*+.^_`|~0-9A-Za-z-]+/y;

export function parseChallenges(header: string | null | undefined): Challenge[] {
  if (!header) return [];
  const out: Challenge[] = [];
  let i = 0;
  const skip = (chars: RegExp) => { while (i < header.length && chars.test(header[i]!)) i++; };
  const token = (): string | null => {
    TOKEN.lastIndex = i;
    const m = TOKEN.exec(header);
    if (!m) return null;
    i += m[0].length;
    return m[0];
  };
  const quoted = (): string => {
    let v = "";
    i++; // opening quote
    while (i < header.length && header[i] !== '"') {
      if (header[i] === "\\" && i + 1 < header.length) i++;
      v += header[i++];
    }
    i++; // closing quote
    return v;
  };
  /** True when the text at i is `token =` (a parameter), not a new scheme. */
  const atParam = (): boolean => {
    TOKEN.lastIndex = i;
    const m = TOKEN.exec(header);
    if (!m) return false;
    let j = i + m[0].length;
    while (j < header.length && (header[j] === " " || header[j] === "\t")) j++;
    return header[j] === "=" && header[j + 1] !== "=";
  };

  while (i < header.length) {
    skip(/[\s,]/);
    const scheme = token();
    if (!scheme) { i++; continue; }
    const challenge: Challenge = { scheme: scheme.toLowerCase(), params: {} };
    out.push(challenge);
    skip(/[ \t]/);
    // A token68 (e.g. `Negotiate abc==`) is not used by registries: skip to the next comma.
    if (i < header.length && header[i] !== "," && !atParam()) {
      while (i < header.length && header[i] !== ",") i++;
      continue;
    }
    while (i < header.length) {
      const before = i;
      skip(/[\s,]/);
      if (!atParam()) {
        i = before; // the next challenge's scheme
        break;
      }
      const name = token()!.toLowerCase();
      skip(/[ \t]/);
      i++; // '='
      skip(/[ \t]/);
      challenge.params[name] = header[i] === '"' ? quoted() : token() ?? "";
      skip(/[ \t]/);
    }
  }
  return out;
}

/** Bearer if offered, else Basic (ggcr's pickFromMultipleChallenges); other schemes are unusable. */
export function pickChallenge(challenges: Challenge[]): Challenge | undefined {
  return challenges.find((c) => c.scheme === "bearer") ?? challenges.find((c) => c.scheme === "basic");
}
