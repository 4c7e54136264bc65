#!/usr/bin/env bash
# `npm test`: set up what the tests need on first run, then run every test once.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npm run --silent typecheck
# Unit, worker and agent tests together; then the end-to-end stack on its own
# (its agents change host-wide network state the agent tests look at).
rc=0
npx vitest run --project worker --project node --project router-node "$@" || rc=$?
npx vitest run --project e2e "$@" || rc=$?
exit $rc
