#!/usr/bin/env bash
# `npm start`: the whole local stack on this machine. Installs what it needs on
# first run, creates .dev.vars (ADMIN_TOKEN, ENCRYPTION_KEY) when absent, applies
# the D1 migrations locally and runs the control plane under wrangler dev.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

if [ ! -f .dev.vars ]; then
  umask 077
  {
    echo "ADMIN_TOKEN=bu_$(openssl rand -hex 32)"
    echo "ENCRYPTION_KEY=$(openssl rand -base64 32)"
  } > .dev.vars
  echo "start: created .dev.vars"
fi
admin_token=$(sed -n 's/^ADMIN_TOKEN=//p' .dev.vars)

npx wrangler d1 migrations apply DB --local >/dev/null
cat <<MSG
Berth control plane: http://127.0.0.1:${BERTH_API_PORT:-8787}
Admin token:         ${admin_token}
Try:  curl -H "Authorization: Bearer ${admin_token}" http://127.0.0.1:${BERTH_API_PORT:-8787}/v3/feature_flags/diego_docker
MSG
exec npx wrangler dev --ip 127.0.0.1 --port "${BERTH_API_PORT:-8787}"
