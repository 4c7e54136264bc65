#!/usr/bin/env bash
# Idempotent set-up shared by `npm start` and `npm test`: Debian packages,
# npm dependencies and the native addon. Safe to run again; does nothing twice.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PKGS=(docker-registry skopeo umoci busybox-static runc crun nginx nftables iptables
  iproute2 libseccomp-dev libmnl-dev libnftables-dev wrk zstd apache2-utils openssl)
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

addon=agent/native/build/Release/berth_native.node
# berth-init (agent/native/init) is built by the same binding.gyp, beside the addon.
if [ ! -f "$addon" ] || [ ! -f agent/native/build/Release/berth-init ] ||
  [ -n "$(find agent/native/src agent/native/init agent/native/binding.gyp -newer "$addon" -print -quit)" ]; then
  echo "setup: building the native addon"
  (cd agent/native && npx node-gyp rebuild >/dev/null)
fi
