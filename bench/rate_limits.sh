#!/usr/bin/env bash
# What the rate limits cost on the authenticated hot path: `GET /v1/tokens/me`
# with the bootstrap access key, served by the same binary and database in
# three configurations, measured in interleaved rounds:
#
#   off     [rate_limits] enabled = false
#   local   in-process GCRA (one node)
#   redis   limits shared through Redis (redis_url)
#
#   bash bench/rate_limits.sh
#
# What it does (see BENCHMARKS.md for the why):
#   1. `cargo build --release` (into $CARGO_TARGET_DIR when set, else target/).
#   2. Installs wrk (and curl) with apt-get when missing; checks that Redis
#      answers at $REDIS_URL (redis-cli ping).
#   3. First start of `gatehouse serve` on a fresh temporary data dir (SQLite)
#      to read the bootstrap access key from its banner; then, for each round
#      and each mode, starts the server on that data dir with the mode's
#      gatehouse.toml, warms up, runs `wrk --latency`, stops the server.
#   4. Prints one row per mode and round, and the medians: requests/s,
#      average and p99 latency, and the server's CPU time per request (from
#      /proc/<pid>/stat). A row where the server used under 90 % of its CPU
#      was disturbed by other work on the machine; it is marked and left out
#      of the medians.
#   5. Deletes the temporary directory (trap). The bench's keys in Redis
#      (gatehouse:rl:*) expire on their own within seconds.
#
# The credential limit is raised to 1,000,000 per second so no request is
# refused: the run measures the cost of deciding, not of refusing (a 429
# would also make wrk's numbers meaningless). Only loopback traffic; every
# step is bounded in time.
#
# CPU pinning as in bench/tokens_me.sh: server on CPU 0 (one tokio worker),
# wrk on CPU 1, when taskset exists and there are 2 CPUs. Redis is the
# machine's own and is not pinned; the limiter sends it one script call per
# key every 25 ms, so it does little work.
#
# Knobs (environment variables):
#   DURATION=10s     measured run per mode and round (wrk -d)
#   WARMUP=3s        warm-up run before each measurement
#   ROUNDS=3         rounds; each measures off, local, redis in turn
#   CONNECTIONS=32   open connections (wrk -c)
#   THREADS=1        wrk threads (wrk -t)
#   PORT=18490       first port to try on 127.0.0.1 (the next free one is used)
#   PIN=1            pin server to CPU 0 and wrk to CPU 1 (when possible)
#   REDIS_URL=redis://127.0.0.1:6379
#   IDLE_WAIT=300    before each measurement, wait up to this many seconds
#                    for the machine to be idle (under 10 % of all CPUs busy)
#   SKIP_BUILD=0     1 = use the existing release binary as is

set -euo pipefail

DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-3s}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-1}
PORT=${PORT:-18490}
PIN=${PIN:-1}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
SKIP_BUILD=${SKIP_BUILD:-0}
IDLE_WAIT=${IDLE_WAIT:-300}
MODES=(off local redis)

cd "$(dirname "$0")/.."
REPO=$(pwd -P)
BIN="${CARGO_TARGET_DIR:-$REPO/target}/release/gatehouse"

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

to_seconds() {
    local v=$1
    case "$v" in
        *[0-9]s) echo "${v%s}" ;;
        *[0-9]m) echo $(( ${v%m} * 60 )) ;;
        *[0-9]) echo "$v" ;;
        *) die "cannot read duration '$v' (use e.g. 10s, 1m)" ;;
    esac
}
DURATION_S=$(to_seconds "$DURATION")
WARMUP_S=$(to_seconds "$WARMUP")
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ && "$CONNECTIONS" =~ ^[0-9]+$ && "$THREADS" =~ ^[0-9]+$ && "$PORT" =~ ^[0-9]+$ && "$IDLE_WAIT" =~ ^[0-9]+$ ]] \
    || die "ROUNDS, CONNECTIONS, THREADS, PORT and IDLE_WAIT must be numbers"
[[ "$REDIS_URL" =~ ^redis://(127\.[0-9.]+|localhost|\[::1\])(:[0-9]+)?/?$ ]] \
    || die "REDIS_URL must be a loopback redis:// URL (got $REDIS_URL)"

# ---------------------------------------------------------------- tools
need_apt=()
command -v wrk >/dev/null 2>&1 || need_apt+=(wrk)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
command -v redis-cli >/dev/null 2>&1 || need_apt+=(redis-tools)
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
timeout 5 redis-cli -u "$REDIS_URL" ping 2>/dev/null | grep -q PONG \
    || die "no Redis answers at $REDIS_URL (start one: redis-server --port 6379 --save '')"

SERVER_PIN=()
WRK_PIN=()
NCPU=$(nproc)
if [[ "$PIN" == 1 ]] && command -v taskset >/dev/null 2>&1 && ((NCPU >= 2)); then
    SERVER_PIN=(taskset -c 0)
    WRK_PIN=(taskset -c 1)
    PINNING="server on CPU 0, wrk on CPU 1 (taskset); Redis not pinned"
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
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-bench-rl.XXXXXX")
SERVER_PID=""
stop_server() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 100); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=""
}
cleanup() {
    local rc=$?
    stop_server
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

for v in $(compgen -e | grep '^GATEHOUSE_' || true); do unset "$v"; done
unset TOKIO_WORKER_THREADS

for mode in "${MODES[@]}"; do
    mkdir -p "$tmp/$mode"
    case $mode in
        off) printf '[rate_limits]\nenabled = false\n' ;;
        local) printf '[rate_limits]\ncredential = { limit = 1000000, window_seconds = 1 }\n' ;;
        redis) printf 'redis_url = "%s"\n[rate_limits]\ncredential = { limit = 1000000, window_seconds = 1 }\n' "$REDIS_URL" ;;
    esac >"$tmp/$mode/gatehouse.toml"
done

http_status() {
    local url=$1; shift
    curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@" "$url" || true
}

start_server() { # mode
    local mode=$1
    (
        cd "$tmp/$mode"
        RUST_LOG=warn exec "${SERVER_PIN[@]}" "$BIN" serve \
            --data-dir "$tmp/data" --listen "127.0.0.1:$PORT" \
            >"$tmp/$mode/server.out" 2>>"$tmp/$mode/server.err"
    ) &
    SERVER_PID=$!
    for _ in $(seq 300); do
        kill -0 "$SERVER_PID" 2>/dev/null || { cat "$tmp/$mode/server.err" >&2; die "server exited during start ($mode)"; }
        [[ $(http_status "$BASE/healthz") == 200 ]] && return 0
        sleep 0.1
    done
    cat "$tmp/$mode/server.err" >&2
    die "server not healthy after 30 s ($mode)"
}

log "first start (data dir $tmp/data)"
start_server off
KEY=$(awk '$1 == "access" && $2 == "key" { print $3; exit }' "$tmp/off/server.out")
[[ "$KEY" == dyn_* ]] || { cat "$tmp/off/server.out" >&2; die "no access key in the first-start banner"; }
stop_server
AUTH="Authorization: Bearer $KEY"

# ---------------------------------------------------------------- load
CLK_TCK=$(getconf CLK_TCK)
server_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$SERVER_PID/stat"; }
busy_ticks() { awk '$1 == "cpu" { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6 }' /proc/stat; }
to_us() {
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") m = 1; else if (u == "ms") m = 1000; else if (u == "s") m = 1e6; else m = 0
        printf "%.1f", n * m }'
}
run_wrk() { # seconds out-file
    timeout $(($1 + 60)) "${WRK_PIN[@]}" wrk --latency -t"$THREADS" -c"$CONNECTIONS" \
        -d"$1s" --timeout 5s -H "$AUTH" "$BASE/v1/tokens/me" >"$2"
}

# Waits (up to IDLE_WAIT seconds) until the machine is idle: under 10 % of
# all CPUs busy over 2 s, so the measurement is not shared with other work.
wait_idle() {
    local deadline=$((SECONDS + IDLE_WAIT)) b0 b1 t0 t1
    while ((SECONDS < deadline)); do
        read -r b0 t0 < <(awk '$1 == "cpu" { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t }' /proc/stat)
        sleep 2
        read -r b1 t1 < <(awk '$1 == "cpu" { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t }' /proc/stat)
        (( (b1 - b0) * 10 < (t1 - t0) )) && return 0
    done
    log "the machine is still busy after ${IDLE_WAIT}s; measuring anyway"
}

ROWS=()
declare -A RPS CPU CLEAN
for round in $(seq "$ROUNDS"); do
    for mode in "${MODES[@]}"; do
        wait_idle
        start_server "$mode"
        r=$(curl -s -D - -o /dev/null --max-time 5 -H "$AUTH" "$BASE/v1/tokens/me")
        grep -q '^HTTP/1.1 200' <<<"$r" || die "$mode: GET /v1/tokens/me did not answer 200"
        if [[ $mode == off ]]; then
            grep -qi '^ratelimit:' <<<"$r" && die "off: the RateLimit header is still sent"
        else
            grep -qi '^ratelimit: "credential"' <<<"$r" || die "$mode: no RateLimit header"
        fi
        if [[ $mode == redis ]]; then
            # The node shares its limits once a heartbeat reached Redis.
            for _ in $(seq 50); do
                [[ $(timeout 5 redis-cli -u "$REDIS_URL" zcard gatehouse:rl:nodes) -ge 1 ]] && break
                sleep 0.1
            done
        fi
        log "round $round/$ROUNDS, $mode: warm-up $WARMUP, then $DURATION"
        run_wrk "$WARMUP_S" "$tmp/warm.txt"
        s0=$(server_ticks); b0=$(busy_ticks); w0=$(date +%s.%N)
        run_wrk "$DURATION_S" "$tmp/wrk-$round-$mode.txt"
        w1=$(date +%s.%N); b1=$(busy_ticks); s1=$(server_ticks)
        out="$tmp/wrk-$round-$mode.txt"
        if grep -q -e 'Non-2xx or 3xx responses' -e 'Socket errors' "$out"; then
            cat "$out" >&2
            die "$mode: wrk saw errors or non-2xx responses"
        fi
        if [[ $mode == redis ]] && grep -q 'Redis is unreachable' "$tmp/$mode/server.err"; then
            cat "$tmp/$mode/server.err" >&2
            die "redis: the server lost Redis during the run"
        fi
        stop_server
        rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
        avg=$(to_us "$(awk '$1 == "Latency" { print $2; exit }' "$out")")
        p99=$(to_us "$(awk '$1 == "99%" { print $2; exit }' "$out")")
        reqs=$(awk '/requests in/ { print $1; exit }' "$out")
        secs=$(awk -v a="$w0" -v b="$w1" 'BEGIN { print b - a }')
        cpu=$(awk -v d=$((s1 - s0)) -v hz="$CLK_TCK" -v n="$reqs" 'BEGIN { printf "%.2f", d / hz * 1e6 / n }')
        util=$(awk -v d=$((s1 - s0)) -v hz="$CLK_TCK" -v s="$secs" 'BEGIN { printf "%.0f", d / hz / s * 100 }')
        other=$(awk -v d=$(((b1 - b0) - (s1 - s0))) -v hz="$CLK_TCK" -v s="$secs" 'BEGIN { printf "%.0f", d / hz / s * 100 }')
        RPS[$round-$mode]=$rps
        CPU[$round-$mode]=$cpu
        # Below 90 % the server was not the bottleneck: something else on
        # the machine took its CPU, and the row is left out of the medians.
        CLEAN[$round-$mode]=$((util >= 90))
        note=""
        ((util >= 90)) || note=" (disturbed)"
        ROWS+=("$(printf '| %d | %-5s | %8.0f | %8s | %8s | %8s | %6s %% | %9s %% |%s' \
            "$round" "$mode" "$rps" "$avg" "$p99" "$cpu" "$util" "$other" "$note")")
    done
done

# ---------------------------------------------------------------- report
median() { sort -n | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
echo
echo "date:        $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "commit:      $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$REPO" diff --quiet HEAD 2>/dev/null || echo ' (+ uncommitted changes)')"
echo "cpu:         $(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo) x $NCPU"
echo "wrk:         $(wrk -v 2>&1 | head -n1 | awk '{ print $1, $2 }'), -t$THREADS -c$CONNECTIONS -d$DURATION (warm-up $WARMUP), $ROUNDS rounds"
echo "redis:       $(redis-cli -u "$REDIS_URL" info server 2>/dev/null | awk -F: '/^redis_version/ { print $2 }' | tr -d '\r') at $REDIS_URL"
echo "pinning:     $PINNING"
echo
echo "| round | mode | req/s | avg (us) | p99 (us) | server us/req | server CPU | wrk + other CPU |"
echo "|---:|---|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${ROWS[@]}"
echo
# The rounds of a mode that count: the undisturbed ones, or all if none is.
rounds_of() {
    local mode=$1 r picked=()
    for r in $(seq "$ROUNDS"); do ((CLEAN[$r-$mode])) && picked+=("$r"); done
    ((${#picked[@]})) || picked=($(seq "$ROUNDS"))
    echo "${picked[@]}"
}
echo "| mode | rounds | median req/s | median server us/req | vs off (us/req) |"
echo "|---|---:|---:|---:|---:|"
off_cpu=$(for r in $(rounds_of off); do echo "${CPU[$r-off]}"; done | median)
for mode in "${MODES[@]}"; do
    rs=$(rounds_of "$mode")
    m_rps=$(for r in $rs; do echo "${RPS[$r-$mode]}"; done | median)
    m_cpu=$(for r in $rs; do echo "${CPU[$r-$mode]}"; done | median)
    printf '| %-5s | %6s | %8.0f | %8.2f | %+6.2f |\n' "$mode" "$(wc -w <<<"$rs")" "$m_rps" "$m_cpu" \
        "$(awk -v a="$m_cpu" -v b="$off_cpu" 'BEGIN { print a - b }')"
done
