#!/usr/bin/env bash
# Starts the local OpenID provider for the README's "Connecting OAuth2
# accounts" walkthrough: http://127.0.0.1:9090, one client `gatehouse` /
# `local-client-secret` that may redirect to a Gatehouse on
# http://localhost:8080 (override with GATEHOUSE_URL). Any login and
# password sign in. Stop it with Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")"
[ -d node_modules/oidc-provider ] || npm ci --no-audit --no-fund --silent
gatehouse="${GATEHOUSE_URL:-http://localhost:8080}"
export PORT="${PORT:-9090}"
export CLIENTS="[{\"client_id\": \"gatehouse\", \"client_secret\": \"local-client-secret\",
  \"redirect_uris\": [\"$gatehouse/v1/connect/oauth2/callback\"],
  \"token_endpoint_auth_method\": \"client_secret_basic\"}]"
exec node server.mjs
