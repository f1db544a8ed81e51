#!/usr/bin/env bash
# Starts BIN (default: the release binary) on a fresh data dir, optionally
# under $WRAP (valgrind), with an app deployed with two requirements and a
# connect token minted for it; prints the directory holding key, tok, base,
# pid and host. Used by bench/callgrind.sh.
#
# The limits stay on with their defaults except `credential` and
# `environment`, raised (as bench/run does) so that no request is refused:
# a default `credential` limit refuses a share of a long run that depends
# on how fast valgrind runs, and a 429 costs less than the route. LIMITS=off
# turns the limits off instead (what the limiter costs is the difference).
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-${CARGO_TARGET_DIR:-$HERE/target}/release/gatehouse}
D=$(mktemp -d); PORT=18611
cd $D
if [ "${LIMITS:-on}" = off ]; then
  printf '[rate_limits]\nenabled = false\n' > gatehouse.toml
else
  printf '[rate_limits]\ncredential = { limit = 1000000, window_seconds = 1 }\nenvironment = { limit = 1000000, window_seconds = 1 }\n' > gatehouse.toml
fi
RUST_LOG=warn $BIN init --owner-email o@example.com --json > init.json
KEY=$(python3 -c "import json;print(json.load(open('init.json'))['access_key']['token'])")
ENV=$(python3 -c "import json;print(json.load(open('init.json'))['environments']['sandbox'])")
RUST_LOG=warn ${WRAP:-} $BIN serve --listen 127.0.0.1:$PORT > serve.log 2>&1 &
PID=$!
for i in $(seq 1 600); do curl -sf http://127.0.0.1:$PORT/healthz >/dev/null && break; sleep 0.2; done
B=http://127.0.0.1:$PORT
APP=$(curl -sf -H "Authorization: Bearer $KEY" -H 'content-type: application/json' -d "{\"name\":\"Bench\",\"environment_id\":\"$ENV\"}" $B/v1/apps)
APP_ID=$(echo "$APP" | python3 -c "import json,sys;print(json.load(sys.stdin)['data']['id'])")
HOST=$(echo "$APP" | python3 -c "import json,sys;print(json.load(sys.stdin)['data']['hostname'])")
VER=$(curl -sf -H "Authorization: Bearer $KEY" -H 'content-type: application/json' -d '{"requirements":[{"name":"openai","type":"connection","spec":{"type":"connection","data":{"type":"dynamiq.connections.OpenAI"}}},{"name":"api","type":"connection","spec":{"type":"connection","data":{"type":"dynamiq.connections.HttpApiKey"}}}]}' $B/v1/apps/$APP_ID/versions | python3 -c "import json,sys;print(json.load(sys.stdin)['data']['id'])")
curl -sf -H "Authorization: Bearer $KEY" -H 'content-type: application/json' -d "{\"version_id\":\"$VER\"}" $B/v1/apps/$APP_ID/deployments >/dev/null
TOK=$(curl -sf -H "Host: $HOST" -H "Authorization: Bearer $KEY" -H 'content-type: application/json' -d '{"user_id":"bench-user"}' $B/v1/connect/tokens | python3 -c "import json,sys;print(json.load(sys.stdin)['token'])")
curl -sf -H "Authorization: Bearer $TOK" $B/v1/connect/requirements > /dev/null
echo "$KEY" > key; echo "$TOK" > tok; echo $B > base; echo $PID > pid; echo $HOST > host
echo "$D"
