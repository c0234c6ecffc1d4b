#!/usr/bin/env bash
# Measures Switchboard under the hostile floods of issue 14 with `bench hostile`
# (src/bin/bench/hostile.rs): the server's RSS before, at the peak of and after each flood, and
# `/health` latency throughout. Every flood runs against a fresh server (temporary data
# directory, pinned credentials, default limits, a free port) pinned to core 0, with the
# generator on core 1; the server is stopped by its PID afterwards.
#
#   scripts/hostile.sh                        # every flood against this checkout
#   scripts/hostile.sh argon bodies           # some of them
#   scripts/hostile.sh --before 57d0bee       # each flood against revision 57d0bee as well
#
# Floods: login-names, argon, bodies, amplification.
# --before REV builds REV's server in a temporary `git worktree` with its own target directory,
# target/hostile-before (kept, so later runs build incrementally; the worktree is removed as soon
# as the build is done), and runs each flood against it before this checkout's server.
# Results: target/hostile/<rev>-<flood>.json (and .server.log), a summary table on stdout.
# Every run is bounded: by the scenario's own timeout, and by HOSTILE_BACKSTOP seconds (default
# 600) after which the generator is killed.
#
# Environment: HOSTILE_OUT (results directory), SERVER_CORE / CLIENT_CORE (default 0 / 1),
# SKIP_BUILD=1 to reuse the built binaries, HOSTILE_ARGS (more `bench hostile` options for every
# flood, e.g. "--duration 5 --settle 3").
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=${HOSTILE_OUT:-$ROOT/target/hostile}
BEFORE_TARGET=$ROOT/target/hostile-before
SERVER_CORE=${SERVER_CORE:-0}
CLIENT_CORE=${CLIENT_CORE:-1}
BACKSTOP=${HOSTILE_BACKSTOP:-600}
read -r -a EXTRA <<<"${HOSTILE_ARGS:-}"
ALL_FLOODS=(login-names argon bodies amplification)

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
}

BEFORE=
FLOODS=()
while [[ $# -gt 0 ]]; do
    case $1 in
        --before)
            [[ $# -ge 2 ]] || usage
            BEFORE=$2
            shift 2
            ;;
        login-names | argon | bodies | amplification)
            FLOODS+=("$1")
            shift
            ;;
        -h | --help) usage ;;
        *)
            echo "hostile.sh: unknown argument $1" >&2
            usage
            ;;
    esac
done
[[ ${#FLOODS[@]} -gt 0 ]] || FLOODS=("${ALL_FLOODS[@]}")

APP_ID=bench
APP_KEY=bench-key
APP_SECRET=bench-secret-0123456789

# The bodies flood holds 600 connections: raise the open-files limit (soft up to hard).
want=65536
hard=$(ulimit -Hn)
if [[ "$hard" != unlimited && "$hard" -lt "$want" ]]; then want=$hard; fi
ulimit -n "$want" || echo "hostile.sh: could not raise the open-files limit (now $(ulimit -n))" >&2

SERVER_PID=
DATA_DIR=
BEFORE_TREE=

stop_server() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        # A server holding stalled bodies may drain slowly: 10 s, then KILL.
        for _ in $(seq 1 100); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    if [[ -n "$SERVER_PID" ]]; then wait "$SERVER_PID" 2>/dev/null || true; fi
    SERVER_PID=
    if [[ -n "$DATA_DIR" ]]; then rm -rf "$DATA_DIR"; fi
    DATA_DIR=
}

cleanup() {
    stop_server
    if [[ -n "$BEFORE_TREE" ]]; then
        git worktree remove --force "$BEFORE_TREE" 2>/dev/null || rm -rf "$BEFORE_TREE"
        git worktree prune 2>/dev/null || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# This checkout's revision; "-dirty" when tracked files differ from it.
CURRENT=$(git rev-parse --short HEAD)
git diff --quiet HEAD -- || CURRENT=$CURRENT-dirty

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    cargo build --release --bin switchboard --bin bench >&2
fi
CURRENT_BIN=$TARGET/release/switchboard
BENCH_BIN=$TARGET/release/bench

BEFORE_BIN=
if [[ -n "$BEFORE" ]]; then
    BEFORE_REV=$(git rev-parse --short "$BEFORE^{commit}")
    BEFORE_BIN=$BEFORE_TARGET/switchboard-$BEFORE_REV
    if [[ "${SKIP_BUILD:-0}" != 1 || ! -x "$BEFORE_BIN" ]]; then
        BEFORE_TREE=$(mktemp -d -t switchboard-before.XXXXXX)
        rmdir "$BEFORE_TREE"
        git worktree add --detach "$BEFORE_TREE" "$BEFORE_REV" >&2
        echo "hostile.sh: building $BEFORE_REV's server in $BEFORE_TREE (target $BEFORE_TARGET)" >&2
        (cd "$BEFORE_TREE" && CARGO_TARGET_DIR=$BEFORE_TARGET cargo build --release --bin switchboard >&2)
        cp "$BEFORE_TARGET/release/switchboard" "$BEFORE_BIN"
        git worktree remove --force "$BEFORE_TREE"
        BEFORE_TREE=
    fi
fi

mkdir -p "$OUT"

# Starts a server binary ($1) on a free port with a fresh data directory, logging to $2; sets
# SERVER_PID and URL.
start_server() {
    local bin=$1 log=$2
    DATA_DIR=$(mktemp -d -t switchboard-hostile.XXXXXX)
    SWITCHBOARD_APP_ID=$APP_ID SWITCHBOARD_APP_KEY=$APP_KEY SWITCHBOARD_APP_SECRET=$APP_SECRET \
        SWITCHBOARD_LOG_FORMAT=text LOG_LEVEL=info \
        taskset -c "$SERVER_CORE" "$bin" serve --port 0 --bind 127.0.0.1 --data-dir "$DATA_DIR" \
        >"$log" 2>&1 &
    SERVER_PID=$!
    URL=
    for _ in $(seq 1 300); do
        URL=$(grep -o 'listening on http://[0-9.:]*' "$log" 2>/dev/null | head -n1 | sed 's/^listening on //' || true)
        [[ -n "$URL" ]] && return 0
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            echo "hostile.sh: the server exited during startup:" >&2
            cat "$log" >&2
            return 1
        fi
        sleep 0.1
    done
    echo "hostile.sh: the server did not report its address within 30 s" >&2
    return 1
}

# machine_busy_percent, wait_quiet
source "$ROOT/scripts/quiet-machine.sh"

ROWS=()
FAILED=()
# Runs flood $1 against server binary $2 of revision $3.
measure() {
    local flood=$1 bin=$2 rev=$3
    local json=$OUT/$rev-$flood.json log=$OUT/$rev-$flood.server.log
    echo "hostile.sh: == $flood against $rev" >&2
    if ! start_server "$bin" "$log"; then
        echo "{\"scenario\": \"hostile\", \"error\": \"the server did not start\"}" >"$json"
        FAILED+=("$rev-$flood")
        stop_server
        return
    fi
    echo "hostile.sh: server $rev PID $SERVER_PID on $URL (core $SERVER_CORE), generator on core $CLIENT_CORE" >&2
    wait_quiet
    if ! timeout --kill-after=10 "$BACKSTOP" taskset -c "$CLIENT_CORE" "$BENCH_BIN" --url "$URL" \
        --server-pid "$SERVER_PID" hostile --flood "$flood" "${EXTRA[@]}" >"$json"; then
        FAILED+=("$rev-$flood")
    fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "hostile.sh: WARNING: the $rev server died during $flood; see $log" >&2
        FAILED+=("$rev-$flood-server-died")
    fi
    stop_server
    ROWS+=("$(jq -r --arg rev "$rev" --arg flood "$flood" '[
        $flood, $rev,
        (.baseline.rss_mb // "?"), (.peak.rss_mb // "?"), (.after.rss_mb // "?"), (.retained_mb // "?"),
        (.peak.threads // "?"),
        (.health.p99_ms // "?"), (.health.max_ms // "?"),
        ((.health.timed_out // 0) + (.health.errors // 0) + (.health.non_200 // 0)),
        (.cpu.other_cpu_percent // "?"),
        (.targets_met.all | if . == null then "?" elif . then "yes" else "no" end),
        (if .error then "error: " + .error
         else (.flood.totals // {} | to_entries | map("\(.key)×\(.value)") | join(" ")) end)
    ] | map(tostring) | join("\t")' "$json" 2>/dev/null || printf '%s\t%s\t(no report)' "$flood" "$rev")")
}

for flood in "${FLOODS[@]}"; do
    if [[ -n "$BEFORE_BIN" ]]; then measure "$flood" "$BEFORE_BIN" "$BEFORE_REV"; fi
    measure "$flood" "$CURRENT_BIN" "$CURRENT"
done

{
    printf 'flood\tserver\tbaseline MiB\tpeak MiB\tafter MiB\tretained MiB\tpeak threads\thealth p99 ms\thealth max ms\tbad probes\tother CPU %%\ttargets met\tflood outcomes\n'
    printf '%s\n' "${ROWS[@]}"
} | column -t -s $'\t'
echo "hostile.sh: reports in $OUT" >&2
if [[ ${#FAILED[@]} -gt 0 ]]; then
    echo "hostile.sh: failed: ${FAILED[*]}" >&2
    exit 1
fi
