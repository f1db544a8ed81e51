#!/usr/bin/env bash
# Instructions per request of one route, counted by callgrind (stable from
# run to run, whatever else the machine does; see BENCHMARKS.md).
#
#   bash bench/callgrind.sh BINARY requirements|me|healthz [N]
#
# Starts BINARY under valgrind on a fresh data dir (bench/callgrind_setup.sh:
# an app with two requirements, deployed, and a connect token), warms the
# route up, zeroes the counters, sends N+1 requests on one keep-alive
# connection (curl --next), dumps, and prints instructions per request.
set -euo pipefail
BIN=$1; KIND=$2; N=${3:-1000}
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$(mktemp -d)
export WRAP="valgrind --tool=callgrind --callgrind-out-file=$OUT/cg.%p.out --dump-instr=no --collect-atstart=yes"
D=$(BIN=$BIN "$HERE/callgrind_setup.sh" | tail -1)
cd $D
B=$(cat base); TOK=$(cat tok); KEY=$(cat key)
case $KIND in
  requirements) H="Authorization: Bearer $TOK"; P=/v1/connect/requirements ;;
  me) H="Authorization: Bearer $KEY"; P=/v1/tokens/me ;;
  healthz) H="X-A: b"; P=/healthz ;;
esac
# warm
for i in $(seq 1 50); do curl -sf -H "$H" $B$P >/dev/null; done
callgrind_control -z >/dev/null 2>&1
args=(); for i in $(seq 1 $N); do args+=(-H "$H" -o /dev/null $B$P --next); done
curl -s "${args[@]}" -H "$H" -o /dev/null $B$P
callgrind_control -d >/dev/null 2>&1
sleep 1
kill $(cat pid) 2>/dev/null || true
sleep 2
F=$(ls -t "$OUT"/cg.*.out.1 | head -1)
TOTAL=$(callgrind_annotate $F 2>/dev/null | grep -m1 "PROGRAM TOTALS" | awk '{gsub(",","",$1); print $1}')
echo "$KIND: $TOTAL Ir for $((N+1)) requests = $((TOTAL / (N+1))) Ir/request (profile: $F)"
rm -rf "$D"
