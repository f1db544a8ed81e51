#!/usr/bin/env bash
# Instructions per request of one route, counted by callgrind (stable from
# run to run, whatever else the machine does; see BENCHMARKS.md).
#
#   bash bench/callgrind.sh BINARY requirements|me|healthz [N]
#   LIMITS=off bash bench/callgrind.sh BINARY me     # the same, limits off
#
# Starts BINARY under valgrind on a fresh data dir (bench/callgrind_setup.sh:
# an app with two requirements, deployed, and a connect token; the limits
# that would refuse requests raised, or LIMITS=off), warms the
# route up, zeroes the counters, sends N+1 requests on one keep-alive
# connection (curl --next), dumps, and prints instructions per request.
set -euo pipefail
BIN=$1; KIND=$2; N=${3:-1000}
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$(mktemp -d)
export WRAP="valgrind --tool=callgrind --callgrind-out-file=$OUT/cg.%p.out --dump-instr=no --collect-atstart=yes"
D=$(BIN=$BIN "$HERE/callgrind_setup.sh" | tail -1)
# The server goes whatever happens below (it holds the port).
trap 'kill $(cat "$D/pid" 2>/dev/null) 2>/dev/null || true' EXIT
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
# The requests as a curl config (a connect token is a kilobyte: N of them
# do not fit on a command line).
for i in $(seq 0 $N); do
  [ "$i" = 0 ] || echo next
  printf 'header = "%s"\noutput = /dev/null\nwrite-out = "%%{http_code}\\n"\nurl = "%s"\n' "$H" "$B$P"
done > "$OUT/requests"
curl -s -K "$OUT/requests" > "$OUT/codes"
callgrind_control -d >/dev/null 2>&1
sleep 1
kill $(cat pid) 2>/dev/null || true
sleep 2
# Every counted request must have been answered 200: a refused or failed
# one costs something else.
OTHER=$(grep -cv '^200$' "$OUT/codes" || true)
if [ "$OTHER" != 0 ]; then
  echo "$KIND: $OTHER of $((N+1)) requests were not answered 200 ($(sort "$OUT/codes" | uniq -c | tr -s ' \n' ' '))" >&2
  rm -rf "$D"; exit 1
fi
F=$(ls -t "$OUT"/cg.*.out.1 | head -1)
TOTAL=$(callgrind_annotate $F 2>/dev/null | grep -m1 "PROGRAM TOTALS" | awk '{gsub(",","",$1); print $1}')
echo "$KIND: $TOTAL Ir for $((N+1)) requests = $((TOTAL / (N+1))) Ir/request (profile: $F)"
rm -rf "$D"
