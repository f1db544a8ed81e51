#!/usr/bin/env bash
# Throughput of the authenticated hot path, `GET /v1/tokens/me`, side by side
# with `GET /healthz` (no authentication) on the same server process.
#
#   bash bench/tokens_me.sh
#
# What it does (see BENCHMARKS.md for the why):
#   1. `cargo build --release` at the repository root.
#   2. Installs wrk (and curl) with apt-get when missing.
#   3. Starts `target/release/gatehouse serve` on 127.0.0.1 with a fresh
#      temporary data dir (zero config, SQLite) and reads the bootstrap access
#      key from the first-start banner on stdout.
#   4. Warms both endpoints up, then runs `wrk --latency` against each, one
#      after the other, and prints requests/s, average and p99 latency, and
#      the server's CPU time per request (from /proc/<pid>/stat).
#   5. Stops the server and deletes the temporary directory (trap on EXIT).
#
# Only loopback traffic (127.0.0.1). Every step is bounded in time.
#
# CPU pinning: when `taskset` exists and the machine has at least 2 CPUs, the
# server runs on CPU 0 and wrk on CPU 1, so the load generator does not steal
# cycles from the server. tokio sizes its worker pool from the CPU affinity
# mask, so the pinned server runs one worker thread. PIN=0 disables pinning.
#
# Knobs (environment variables):
#   DURATION=10s     measured run per endpoint (wrk -d)
#   WARMUP=3s        warm-up run per endpoint before measuring
#   CONNECTIONS=32   open connections (wrk -c)
#   THREADS=1        wrk threads (wrk -t)
#   PORT=18480       first port to try on 127.0.0.1 (the next free one is used)
#   PIN=1            pin server to CPU 0 and wrk to CPU 1 (when possible)
#   SKIP_BUILD=0     1 = use the existing target/release/gatehouse as is

set -euo pipefail

DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-3s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-1}
PORT=${PORT:-18480}
PIN=${PIN:-1}
SKIP_BUILD=${SKIP_BUILD:-0}

cd "$(dirname "$0")/.."
REPO=$(pwd -P)
BIN="$REPO/target/release/gatehouse"

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

# "10s", "2m", "1h" or a bare number of seconds -> whole seconds.
to_seconds() {
    local v=$1
    case "$v" in
        *[0-9]s) echo "${v%s}" ;;
        *[0-9]m) echo $(( ${v%m} * 60 )) ;;
        *[0-9]h) echo $(( ${v%h} * 3600 )) ;;
        *[0-9]) echo "$v" ;;
        *) die "cannot read duration '$v' (use e.g. 10s, 1m)" ;;
    esac
}
DURATION_S=$(to_seconds "$DURATION")
WARMUP_S=$(to_seconds "$WARMUP")
[[ "$CONNECTIONS" =~ ^[0-9]+$ && "$THREADS" =~ ^[0-9]+$ && "$PORT" =~ ^[0-9]+$ ]] \
    || die "CONNECTIONS, THREADS and PORT must be numbers"

# ---------------------------------------------------------------- tools
need_apt=()
command -v wrk >/dev/null 2>&1 || need_apt+=(wrk)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
if ((${#need_apt[@]})); then
    log "installing ${need_apt[*]} with apt-get"
    SUDO=""
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null 2>&1 || die "need root or sudo to install ${need_apt[*]}"
        SUDO=sudo
    fi
    timeout 600 $SUDO apt-get update
    DEBIAN_FRONTEND=noninteractive timeout 600 $SUDO apt-get install -y "${need_apt[@]}"
fi

SERVER_PIN=()
WRK_PIN=()
NCPU=$(nproc)
if [[ "$PIN" == 1 ]] && command -v taskset >/dev/null 2>&1 && ((NCPU >= 2)); then
    SERVER_PIN=(taskset -c 0)
    WRK_PIN=(taskset -c 1)
    PINNING="server on CPU 0, wrk on CPU 1 (taskset)"
else
    PINNING="none"
fi

# ---------------------------------------------------------------- build
if [[ "$SKIP_BUILD" != 1 ]]; then
    log "cargo build --release"
    cargo build --release
fi
[[ -x "$BIN" ]] || die "$BIN not found (build failed?)"

# ---------------------------------------------------------------- server
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-bench.XXXXXX")
SERVER_PID=""
cleanup() {
    local rc=$?
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for _ in $(seq 100); do
    port_in_use "$PORT" || break
    PORT=$((PORT + 1))
done
port_in_use "$PORT" && die "no free port found on 127.0.0.1"
BASE="http://127.0.0.1:$PORT"

# No GATEHOUSE_* from the caller's environment (it could point the server at
# a real database) and no gatehouse.toml: the server runs inside $tmp.
# No TOKIO_WORKER_THREADS either: the worker count follows the pinning.
for v in $(compgen -e | grep '^GATEHOUSE_' || true); do unset "$v"; done
unset TOKIO_WORKER_THREADS

log "starting gatehouse on $BASE (data dir $tmp/data, pinning: $PINNING)"
(
    cd "$tmp"
    RUST_LOG=warn exec "${SERVER_PIN[@]}" "$BIN" serve \
        --data-dir "$tmp/data" --listen "127.0.0.1:$PORT" \
        >"$tmp/server.out" 2>"$tmp/server.err"
) &
SERVER_PID=$!

http_status() { # url [extra curl args...]
    local url=$1; shift
    curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@" "$url" || true
}

ready=0
for _ in $(seq 300); do # up to 30 s
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$tmp/server.err" >&2; die "server exited during start"; }
    if [[ $(http_status "$BASE/healthz") == 200 ]]; then ready=1; break; fi
    sleep 0.1
done
((ready)) || { cat "$tmp/server.err" >&2; die "server not healthy after 30 s"; }

KEY=$(awk '$1 == "access" && $2 == "key" { print $3; exit }' "$tmp/server.out")
[[ "$KEY" == dyn_* ]] || { cat "$tmp/server.out" >&2; die "no access key in the first-start banner"; }
AUTH="Authorization: Bearer $KEY"

st=$(http_status "$BASE/v1/tokens/me" -H "$AUTH")
[[ "$st" == 200 ]] || die "GET /v1/tokens/me with the bootstrap key answered $st, expected 200"
st=$(http_status "$BASE/v1/tokens/me")
[[ "$st" == 401 ]] || die "GET /v1/tokens/me without a key answered $st, expected 401"

# ---------------------------------------------------------------- load
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
CLK_TCK=$(getconf CLK_TCK)
# utime + stime of the server process (all threads), in clock ticks.
server_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$SERVER_PID/stat"; }
# CPU time of the children this shell has waited for (wrk, and a few ms of
# curl/awk), in clock ticks.
children_ticks() { awk '{ sub(/^.*\) /, ""); print $14 + $15 }' "/proc/$$/stat"; }
# Busy clock ticks of all CPUs together (every process), from /proc/stat.
busy_ticks() { awk '$1 == "cpu" { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6 }' /proc/stat; }
# ticks over seconds -> percent of one CPU
pct_of_cpu() { awk -v d="$1" -v hz="$CLK_TCK" -v s="$2" 'BEGIN { printf "%.0f", d / hz / s * 100 }'; }

run_wrk() { # seconds out-file [wrk args...]
    local secs=$1 out=$2; shift 2
    timeout $((secs + 60)) "${WRK_PIN[@]}" wrk --latency -t"$THREADS" -c"$CONNECTIONS" \
        -d"${secs}s" --timeout 5s "$@" >"$out"
}

# wrk's "10.01s"/"950.12us"/"1.20ms" -> microseconds.
to_us() {
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") m = 1; else if (u == "ms") m = 1000; else if (u == "s") m = 1e6;
        else if (u == "m") m = 6e7; else m = 0
        printf "%.1f", n * m }'
}

declare -A RPS AVG P99 REQS CPU_US UTIL WRK OTHER
measure() { # name path [wrk args...]
    local name=$1 path=$2; shift 2
    log "warm-up $name ($WARMUP)"
    run_wrk "$WARMUP_S" "$tmp/warm-$name.txt" "$@" "$BASE$path"
    log "measuring $name ($DURATION, -t$THREADS -c$CONNECTIONS)"
    local s0 s1 c0 c1 b0 b1 w0 w1 secs
    s0=$(server_ticks); c0=$(children_ticks); b0=$(busy_ticks); w0=$(date +%s.%N)
    run_wrk "$DURATION_S" "$tmp/wrk-$name.txt" "$@" "$BASE$path"
    w1=$(date +%s.%N); b1=$(busy_ticks); c1=$(children_ticks); s1=$(server_ticks)
    secs=$(awk -v a="$w0" -v b="$w1" 'BEGIN { print b - a }')
    UTIL[$name]=$(pct_of_cpu $((s1 - s0)) "$secs")
    WRK[$name]=$(pct_of_cpu $((c1 - c0)) "$secs")
    # Whatever else ran on the machine meanwhile (should be near 0).
    OTHER[$name]=$(pct_of_cpu $(((b1 - b0) - (s1 - s0) - (c1 - c0))) "$secs")
    local out="$tmp/wrk-$name.txt"
    if grep -q -e 'Non-2xx or 3xx responses' -e 'Socket errors' "$out"; then
        cat "$out" >&2
        die "$name: wrk saw errors or non-2xx responses; the numbers would be meaningless"
    fi
    RPS[$name]=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
    AVG[$name]=$(to_us "$(awk '$1 == "Latency" { print $2; exit }' "$out")")
    P99[$name]=$(to_us "$(awk '$1 == "99%" { print $2; exit }' "$out")")
    REQS[$name]=$(awk '/requests in/ { print $1; exit }' "$out")
    CPU_US[$name]=$(awk -v d=$((s1 - s0)) -v hz="$CLK_TCK" -v n="${REQS[$name]}" \
        'BEGIN { printf "%.2f", d / hz * 1e6 / n }')
}

measure healthz /healthz
measure tokens_me /v1/tokens/me -H "$AUTH"

kill -0 "$SERVER_PID" 2>/dev/null || die "server died during the run"
if [[ -s "$tmp/server.err" ]]; then
    log "server stderr (RUST_LOG=warn):"
    sed 's/^/    /' "$tmp/server.err" >&2
fi

# ---------------------------------------------------------------- report
echo
echo "date:        $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "commit:      $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$REPO" diff --quiet HEAD 2>/dev/null || echo ' (+ uncommitted changes)')"
echo "cpu:         $(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo) x $NCPU"
echo "kernel:      $(uname -r)"
echo "wrk:         $(wrk -v 2>&1 | head -n1 | awk '{ print $1, $2 }'), -t$THREADS -c$CONNECTIONS -d$DURATION (warm-up $WARMUP)"
echo "pinning:     $PINNING"
echo "load avg:    $(cut -d' ' -f1-3 /proc/loadavg) (before the run: $LOAD_BEFORE; other busy processes skew the numbers)"
echo
printf '| %-18s | %10s | %10s | %10s | %10s | %14s | %10s | %10s | %10s |\n' \
    endpoint 'req/s' 'avg (us)' 'p99 (us)' requests 'server us/req' 'server CPU' 'wrk CPU' 'other CPU'
printf '|%s|%s|%s|%s|%s|%s|%s|%s|%s|\n' -------------------- -----------: -----------: \
    -----------: -----------: ---------------: -----------: -----------: -----------:
for name in healthz tokens_me; do
    case $name in healthz) label="GET /healthz" ;; tokens_me) label="GET /v1/tokens/me" ;; esac
    printf '| %-18s | %10.0f | %10s | %10s | %10s | %14s | %9s%% | %9s%% | %9s%% |\n' "$label" \
        "${RPS[$name]}" "${AVG[$name]}" "${P99[$name]}" "${REQS[$name]}" "${CPU_US[$name]}" \
        "${UTIL[$name]}" "${WRK[$name]}" "${OTHER[$name]}"
done
echo
awk -v h="${RPS[healthz]}" -v m="${RPS[tokens_me]}" \
    -v ch="${CPU_US[healthz]}" -v cm="${CPU_US[tokens_me]}" 'BEGIN {
    printf "tokens/me / healthz throughput:  %.3f\n", m / h
    printf "auth overhead, 1/rps difference: %.2f us per request\n", (1 / m - 1 / h) * 1e6
    printf "auth overhead, server CPU time:  %.2f us per request\n", cm - ch
}'
for name in healthz tokens_me; do
    if ((OTHER[$name] > 10)); then
        echo "warning: other processes used ${OTHER[$name]}% of a CPU during the $name run;" \
            "rerun on an idle machine" >&2
    fi
done
