/** src/net.cc: container network namespaces (rtnetlink) and nftables (libnftables). */
export interface NetSetupSpec {
  /** Absolute path of a file to create and bind-mount the new network namespace on (must not exist). */
  netnsPath: string;
  /** Name of the host end of the veth pair; the container end is eth0 inside the namespace. */
  hostIfname: string;
  hostAddress: string;
  containerAddress: string;
  prefixLength: number;
}

export interface NativeNet {
  /** New namespace with lo up, a veth pair, both addresses and a default route via the host end. Undone on failure. */
  netSetup(spec: NetSetupSpec): Promise<void>;
  /** Deletes the host end (and so its peer), unmounts and removes the namespace file; missing or omitted parts are skipped. */
  netTeardown(spec: { netnsPath?: string; hostIfname?: string }): Promise<void>;
  /** Runs an nft script as one transaction; resolves with nft's output (JSON when `json`). */
  nftRun(script: string, json?: boolean): Promise<string>;
  /** Makes a directory a shared mount, as `ip netns` does for /run/netns. */
  netnsShareDir(dir: string): void;
}
