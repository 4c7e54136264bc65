#!/usr/bin/env bash
# `npm test`: set up what the tests need on first run, then run every test once.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npm run --silent typecheck
exec npx vitest run "$@"
