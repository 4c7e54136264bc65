#!/usr/bin/env bash
# Idempotent set-up shared by `npm start` and `npm test`: Debian packages,
# npm dependencies and the native addon. Safe to run again; does nothing twice.
set -euo pipefail
cd "$(dirname "$0")/.."

# Node 24, the LTS Berth runs on (supported to 2028-04-30). Where the node on
# PATH is older (Debian's, NodeSource's 20), the npm registry's `node` package
# brings it into .berth/node; node_modules/.bin/node links to it, and npm puts
# node_modules/.bin first on PATH in every npm script, so `npm start`, `npm test`
# and everything they spawn (npx, vitest, wrangler, the agents) run on it.
NODE_VERSION=24.21.0
node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
# The arch-specific package the `node` package installs: its bin/node sits
# beside include/node, where node-gyp finds the headers without a download.
own_node="$PWD/.berth/node/node_modules/node/node_modules/node-linux-$(uname -m | sed 's/x86_64/x64/;s/aarch64/arm64/')/bin/node"
path_node="$(command -v node || true)"
if [ -n "$path_node" ] && [ "$(readlink -f "$path_node")" != "$own_node" ] && [ "$(node_major)" -ge "${NODE_VERSION%%.*}" ]; then
  own_node=""   # the system's Node is new enough
else
  if [ "$("$own_node" -v 2>/dev/null)" != "v$NODE_VERSION" ]; then
    echo "setup: Node $(node -v 2>/dev/null || echo none) is older than ${NODE_VERSION%%.*}; installing node@$NODE_VERSION into .berth/node"
    npm install --prefix .berth/node --no-save --no-package-lock --no-fund --no-audit --loglevel=error "node@$NODE_VERSION"
  fi
  export PATH="$(dirname "$own_node"):$PATH"
  # node-gyp builds against these headers, not an older system's (npm may set nodedir=/usr).
  export npm_config_nodedir="${own_node%/bin/node}"
fi

# Development and tests: the test registry and peers (skopeo, umoci, runc, crun,
# nginx, haproxy, wrk, debootstrap), node-gyp's compiler and python3,
# systemd-analyze for the unit tests. Production cells install far less:
# scripts/install-cell.sh.
APT_PKGS=(docker-registry skopeo umoci busybox-static runc crun nginx haproxy nftables iptables
  iproute2 libseccomp-dev libmnl-dev libnftables-dev libzstd-dev zlib1g-dev wrk zstd apache2-utils openssl debootstrap
  build-essential python3 systemd)
missing=()
for p in "${APT_PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --no-fund --no-audit
fi
# npm ci empties node_modules: link the project's Node again after it.
if [ -n "$own_node" ] && [ "$(readlink node_modules/.bin/node 2>/dev/null)" != "$own_node" ]; then
  ln -sfn "$own_node" node_modules/.bin/node
fi

addon=agent/native/build/Release/berth_native.node
# berth-init (agent/native/init) is built by the same binding.gyp, beside the addon.
if [ ! -f "$addon" ] || [ ! -f agent/native/build/Release/berth-init ] ||
  [ -n "$(find agent/native/src agent/native/init agent/native/binding.gyp -newer "$addon" -print -quit)" ]; then
  echo "setup: building the native addon"
  (cd agent/native && npx node-gyp rebuild >/dev/null)
fi
