#!/usr/bin/env bash
# `npm start`: the whole local stack on this machine. Installs what it needs on
# first run, creates .dev.vars (ADMIN_TOKEN, ENCRYPTION_KEY) when absent, then
# runs scripts/stack.ts: control plane, registry with the demo image, cell, router.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

if [ ! -f .dev.vars ]; then
  # A subshell: the tight umask is for this secrets file only.
  (
    umask 077
    {
      echo "ADMIN_TOKEN=bu_$(openssl rand -hex 32)"
      echo "ENCRYPTION_KEY=$(openssl rand -base64 32)"
    } > .dev.vars
  )
  echo "start: created .dev.vars"
fi
# The stack runs the built agent and router (dist/), as a cell does.
node scripts/build.ts
# node with tsx's loader, not the tsx binary, whose extra process would relay
# each signal a second time.
exec node --import tsx scripts/stack.ts
