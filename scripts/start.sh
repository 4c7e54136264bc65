#!/usr/bin/env bash
# `npm start`: the whole local stack on this machine. Installs what it needs on
# first run, creates .dev.vars (ADMIN_TOKEN, ENCRYPTION_KEY, ADMIN_PASSWORD,
# TOKEN_SIGNING_KEY) and adds whichever of them an older one lacks, then runs
# scripts/stack.ts: control plane, registry with the demo image, cell, router.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

secret_value() {
  case "$1" in
    ADMIN_TOKEN) echo "bu_$(openssl rand -hex 32)" ;;
    ENCRYPTION_KEY) openssl rand -base64 32 ;;
    ADMIN_PASSWORD) openssl rand -hex 12 ;;
    TOKEN_SIGNING_KEY) openssl rand -hex 32 ;;
  esac
}
# A subshell: the tight umask is for this secrets file only.
(
  umask 077
  touch .dev.vars
  for name in ADMIN_TOKEN ENCRYPTION_KEY ADMIN_PASSWORD TOKEN_SIGNING_KEY; do
    if ! grep -q "^$name=" .dev.vars; then
      echo "$name=$(secret_value "$name")" >> .dev.vars
      echo "start: added $name to .dev.vars"
    fi
  done
)
# The stack runs the built agent and router (dist/), as a cell does.
node scripts/build.ts
# node with tsx's loader, not the tsx binary, whose extra process would relay
# each signal a second time.
exec node --import tsx scripts/stack.ts
