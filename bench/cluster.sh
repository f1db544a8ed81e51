#!/usr/bin/env bash
# The many-node shape of docs/deploy.md, on this machine: three Gatehouse
# nodes on one PostgreSQL database, rate limits shared in Redis, and nginx
# in front as the load balancer on loopback; then the README walkthrough
# through nginx, checks that every node served part of it, that a
# revocation made through one node refuses the key on every node, and that
# after `gatehouse keys rotate` on the running cluster a connect token
# minted by any node verifies on every node.
#
#   bench/cluster.sh [path/to/gatehouse]     # default: cargo build --release
#
# Needs PostgreSQL at 127.0.0.1:5432 (user postgres, trust) and Redis at
# 127.0.0.1:6379 (both started here when down, as .ci/run does), nginx
# (apt-get install nginx-light when missing), curl, jq, openssl. Only
# loopback; every wait is bounded; the nodes, nginx and the database are
# removed on exit. PORT (default 18800) is nginx's; the nodes take the next
# three.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-${GATEHOUSE_BIN:-}}
if [ -z "$bin" ]; then
  (cd "$root" && cargo build --quiet --release -p gatehouse --bin gatehouse)
  bin=${CARGO_TARGET_DIR:-$root/target}/release/gatehouse
fi
PORT=${PORT:-18800}

log() { printf '==> %s\n' "$*"; }
die() { printf 'cluster: %s\n' "$*" >&2; exit 1; }

for tool in curl jq openssl psql; do command -v $tool >/dev/null || die "$tool is missing"; done
if ! command -v nginx >/dev/null 2>&1; then
  log "installing nginx"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null
fi
if ! pg_isready -h 127.0.0.1 -p 5432 >/dev/null 2>&1; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 >/dev/null 2>&1 && break; sleep 1; done
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  redis-server --daemonize yes --port 6379 --save ""
fi

tmp=$(mktemp -d)
db=gatehouse_cluster_$$
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT

psql -q -h 127.0.0.1 -U postgres -d postgres -c "CREATE DATABASE $db" >/dev/null
database_url=postgres://postgres@127.0.0.1:5432/$db
public_url=http://localhost:$PORT
# One master key for every node (docs/deploy.md: distribute it as a secret).
master_key=$(openssl rand -hex 32)

cat >"$tmp/gatehouse.toml" <<TOML
database_url = "$database_url"
redis_url = "redis://127.0.0.1:6379"
public_url = "$public_url"
trust_forwarded_headers = true
trusted_proxies = ["127.0.0.1/32"]
TOML

log "init (migrations and the first owner, once, before any node serves)"
GATEHOUSE_MASTER_KEY=$master_key "$bin" init --config "$tmp/gatehouse.toml" --data-dir "$tmp/init" \
  --owner-email owner@example.com --json >"$tmp/init.json"
KEY=$(jq -r .access_key.token "$tmp/init.json")
SANDBOX=$(jq -r .environments.sandbox "$tmp/init.json")

nodes=()
for i in 1 2 3; do
  port=$((PORT + i))
  nodes+=("$port")
  log "node $i on 127.0.0.1:$port"
  RUST_LOG=warn GATEHOUSE_MASTER_KEY=$master_key "$bin" serve --config "$tmp/gatehouse.toml" \
    --data-dir "$tmp/node$i" --listen "127.0.0.1:$port" >"$tmp/node$i.log" 2>&1 &
  pids+=($!)
done
for port in "${nodes[@]}"; do
  for _ in $(seq 1 150); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
  curl -sf "http://127.0.0.1:$port/readyz" >/dev/null || { tail -n 20 "$tmp"/node*.log >&2; die "node on $port is not ready"; }
done

mkdir -p "$tmp/nginx"
cat >"$tmp/nginx/nginx.conf" <<NGINX
worker_processes 1;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log $tmp/nginx/access.log;
  client_body_temp_path $tmp/nginx/body;
  proxy_temp_path $tmp/nginx/proxy;
  fastcgi_temp_path $tmp/nginx/fastcgi;
  uwsgi_temp_path $tmp/nginx/uwsgi;
  scgi_temp_path $tmp/nginx/scgi;
  upstream gatehouse {
    server 127.0.0.1:${nodes[0]};
    server 127.0.0.1:${nodes[1]};
    server 127.0.0.1:${nodes[2]};
    keepalive 16;
  }
  server {
    listen 127.0.0.1:$PORT;
    server_name _;
    location / {
      proxy_pass http://gatehouse;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme;
    }
  }
}
NGINX
log "nginx on 127.0.0.1:$PORT"
nginx -c "$tmp/nginx/nginx.conf" -g 'daemon off;' &
pids+=($!)
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.1; done

GH=http://127.0.0.1:$PORT
auth=(-H "Authorization: Bearer $KEY")
json=(-H 'Content-Type: application/json')
expect() { [ "$1" = "$2" ] || die "$3: expected $2, got $1"; }

log "walkthrough through nginx"
expect "$(curl -s "${auth[@]}" $GH/v1/tokens/me | jq -r .data.kind)" access_key "GET /v1/tokens/me"
app=$(curl -sf -X POST $GH/v1/apps "${auth[@]}" "${json[@]}" -d "{\"name\": \"Acme Agent\", \"environment_id\": \"$SANDBOX\"}")
APP_ID=$(jq -r .data.id <<<"$app"); APP_HOST=$(jq -r .data.hostname <<<"$app")
version=$(curl -sf -X POST $GH/v1/apps/$APP_ID/versions "${auth[@]}" "${json[@]}" \
  -d '{"requirements": [{"name": "openai", "type": "connection", "spec": {"type": "connection", "data": {"type": "dynamiq.connections.OpenAI"}}}]}')
curl -sf -X POST $GH/v1/apps/$APP_ID/deployments "${auth[@]}" "${json[@]}" \
  -d "{\"version_id\": \"$(jq -r .data.id <<<"$version")\"}" >/dev/null
# The app's hostname, through nginx (which passes Host on).
minted=$(curl -sf -X POST -H "Host: $APP_HOST" $GH/v1/connect/tokens "${auth[@]}" "${json[@]}" -d '{"user_id": "customer-7421"}')
CT=$(jq -r .token <<<"$minted")
expect "$(jq -r .url <<<"$minted" | cut -d'?' -f1)" "$public_url/connect" "the hosted page's URL"
REQ=$(curl -sf -H "Authorization: Bearer $CT" $GH/v1/connect/requirements | jq -r '.data[0].id')
expect "$(curl -s -o /dev/null -w '%{http_code}' -X POST $GH/v1/connect/requirements/$REQ/credentials \
  -H "Authorization: Bearer $CT" "${json[@]}" -d '{"type": "dynamiq.connections.OpenAI", "config": {"api_key": "sk-demo"}}')" 201 "submitting credentials"
expect "$(curl -sf -H "Host: $APP_HOST" "${auth[@]}" "$GH/v1/requirements/status?user_id=customer-7421" | jq -r .status)" complete "the user is ready"
for _ in $(seq 1 30); do curl -sf "${auth[@]}" $GH/v1/tokens/me >/dev/null; done

log "every node served part of it"
for port in "${nodes[@]}"; do
  n=$(curl -sf "http://127.0.0.1:$port/metrics" | awk '/^gatehouse_http_requests_total/ {s += $NF} END {print s+0}')
  [ "${n%.*}" -gt 3 ] || die "node $port served $n requests"
  echo "    node $port: $n requests"
done

log "a revocation through one node refuses the key on every node"
victim=$(curl -sf -X POST $GH/v1/access-keys "${auth[@]}" "${json[@]}" -d '{"name": "short-lived"}')
VICTIM=$(jq -r .data.token <<<"$victim"); VICTIM_ID=$(jq -r .data.id <<<"$victim")
for port in "${nodes[@]}"; do
  expect "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $VICTIM" http://127.0.0.1:$port/v1/tokens/me)" 200 "the new key on node $port"
done
expect "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "${auth[@]}" http://127.0.0.1:${nodes[0]}/v1/access-keys/$VICTIM_ID)" 204 "revoking on node ${nodes[0]}"
sleep 1
for port in "${nodes[@]}"; do
  expect "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $VICTIM" http://127.0.0.1:$port/v1/tokens/me)" 401 "the revoked key on node $port"
done
log "keys rotate while serving: tokens minted by every node verify on every node"
kid=$(GATEHOUSE_MASTER_KEY=$master_key "$bin" keys rotate --config "$tmp/gatehouse.toml" --data-dir "$tmp/init" | tail -n 1)
[ -n "$kid" ] || die "keys rotate printed no kid"
for port in "${nodes[@]}"; do
  token=$(curl -sf -X POST -H "Host: $APP_HOST" http://127.0.0.1:$port/v1/connect/tokens "${auth[@]}" "${json[@]}" \
    -d '{"user_id": "after-rotation"}' | jq -r .token)
  for other in "${nodes[@]}"; do
    expect "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" http://127.0.0.1:$other/v1/connect/session)" 200 \
      "a token minted on $port, on $other"
  done
done
log "cluster: ok (3 nodes, PostgreSQL $db, Redis, nginx)"
