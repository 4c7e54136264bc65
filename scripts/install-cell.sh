#!/usr/bin/env bash
# Installs Berth's cell agent and router on this host, as root: only what they
# need at run time (docs/deploy.md). scripts/setup.sh is the development install.
#
# Run from a built tree: `npm run package:cell` on a build machine makes
# dist/berth-cell.tar.gz; unpack it on the cell and run scripts/install-cell.sh.
#
#   /opt/berth/node/bin/node   Node 24 (the system's, or the npm registry's `node` package where older)
#   /opt/berth/dist/agent/     the agent and router, the native addon, berth-init
#   /opt/berth/node_modules/   their npm dependencies only (npm ci --omit=dev)
#   /etc/systemd/system/       berth-agent.service, berth-router.service
#   /etc/berth/                cell.json, router.env, router-token: written by the operator
#
# BERTH_INSTALL_ROOT installs under another root (tests); BERTH_SKIP_APT=1
# skips the Debian packages (present already).
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
root="${BERTH_INSTALL_ROOT:-}"
prefix="$root/opt/berth"
NODE_VERSION=24.21.0
die() { echo "install-cell: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root"
[ -f "$src/dist/agent/main.js" ] && [ -f "$src/dist/agent/build/Release/berth_native.node" ] ||
  die "$src/dist/agent is missing: unpack the tarball of npm run package:cell (or run npm run build in a set-up checkout)"

# nft and ip for container networks, the native addon's shared libraries, npm to fetch Node and the dependencies.
if [ -z "${BERTH_SKIP_APT:-}" ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    nftables iproute2 libseccomp2 libmnl0 libnftables1 libzstd1 zlib1g haproxy ca-certificates npm >/dev/null
fi

mkdir -p "$prefix"
major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
system_node="$(command -v node || true)"
if [ -n "$system_node" ] && [ "$(major "$system_node")" -ge "${NODE_VERSION%%.*}" ]; then
  mkdir -p "$prefix/node/bin" && ln -sfn "$system_node" "$prefix/node/bin/node"
else
  echo "install-cell: node@$NODE_VERSION from the npm registry into $prefix/node"
  npm install --prefix "$prefix/.node" --no-save --no-package-lock --no-fund --no-audit --loglevel=error "node@$NODE_VERSION"
  arch="$(uname -m | sed 's/x86_64/x64/;s/aarch64/arm64/')"
  rm -rf "$prefix/node" && ln -sfn ".node/node_modules/node/node_modules/node-linux-$arch" "$prefix/node"
fi

rm -rf "$prefix/dist" && mkdir -p "$prefix/dist" "$prefix/docs"
cp -a "$src/dist/agent" "$prefix/dist/"
cp "$src/package.json" "$src/package-lock.json" "$prefix/"
cp "$src/docs/deploy.md" "$prefix/docs/"
(cd "$prefix" && PATH="$prefix/node/bin:$PATH" npm ci --omit=dev --ignore-scripts --no-fund --no-audit --loglevel=error)

install -d -m 0755 "$root/etc/systemd/system" "$root/etc/berth"
install -m 0644 "$src/deploy/berth-agent.service" "$src/deploy/berth-router.service" "$root/etc/systemd/system/"
[ -f "$root/etc/berth/router.env" ] || install -m 0644 /dev/stdin "$root/etc/berth/router.env" <<'ENV'
# The control plane's URL, for berth-router.service (docs/deploy.md).
BERTH_API_URL=
BERTH_ROUTER_PORT=80
ENV
if [ -z "$root" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi

echo "install-cell: installed $prefix on Node $("$prefix/node/bin/node" -v)"
"$prefix/node/bin/node" "$prefix/dist/agent/main.js" check-host | sed 's/^/install-cell: /' || true
echo "install-cell: next: /etc/berth/cell.json, then systemctl enable --now berth-agent (docs/deploy.md)"
