#!/usr/bin/env bash
# Benchmarks Switchboard with the `bench` tool (src/bin/bench): builds release, starts one
# server pinned to core 0 on a free port with a temporary data directory and pinned credentials,
# runs every scenario with the generator pinned to core 1, stops the server by its PID.
# Results: target/bench/<scenario>.json and target/bench/results.json (all of them).
#
#   scripts/bench.sh            # the full suite (about 5 minutes on 2 cores, plus the build)
#   scripts/bench.sh --quick    # smaller connection counts, shorter runs (about 2 minutes)
#   scripts/bench.sh --latency  # only the two latency scenarios (fanout 1,000 @ 10/s, 10,000 @ 5/s)
#   scripts/bench.sh --floor    # the same two against `bench floor-server` instead of Switchboard:
#                               # one blocking write per delivery and nothing else, the machine's
#                               # floor of the day to read Switchboard's figures against
#   scripts/bench.sh --socketio # the Socket.IO scenarios against Switchboard (its Push-Alt surface:
#                               # token, join_channel, /api/message/emit), the mixed fan-out
#                               # (Pusher, Notif and Socket.IO on one channel) against Pusher alone
#   scripts/bench.sh --node     # the same Socket.IO scenarios against the official Node server
#                               # (bench/node-socketio, `npm ci` there when node_modules is missing)
#   scripts/bench.sh --idle     # idle memory only, alternated twice, each on a fresh server: Pusher
#                               # and Socket.IO WebSocket at 10,000, Socket.IO polling at 1,000
#   scripts/bench.sh --chat     # Hestia's chat (issue 16): idle chat sockets, DMs between friends at
#                               # 2,000 and 5,000/s, a group of 1,000, history pages on 1,000,000 DMs;
#                               # on SQLite, or on BENCH_DATABASE_URL (a database it may empty)
#
# Each idle scenario of --socketio and --node gets a fresh server: RSS per connection is read
# against a heap no earlier scenario grew.
#
# Environment: BENCH_OUT (results directory), SERVER_CORE / CLIENT_CORE (default 0 / 1),
# SKIP_BUILD=1 to reuse target/release binaries.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT=${BENCH_OUT:-$ROOT/target/bench}
SERVER_CORE=${SERVER_CORE:-0}
CLIENT_CORE=${CLIENT_CORE:-1}
QUICK=0
FLOOR=0
LATENCY=0
SOCKETIO=0
NODE=0
IDLE=0
CHAT=0
for arg in "$@"; do
    case $arg in
        --quick) QUICK=1 ;;
        --latency) LATENCY=1 ;;
        --floor) FLOOR=1 LATENCY=1 ;;
        --socketio) SOCKETIO=1 ;;
        --node) NODE=1 ;;
        --idle) IDLE=1 ;;
        --chat) CHAT=1 ;;
        *) echo "bench.sh: unknown option $arg (--quick, --latency, --floor, --socketio, --node, --idle, --chat)" >&2; exit 2 ;;
    esac
done
if [[ $((SOCKETIO + NODE + LATENCY + IDLE + CHAT)) -gt 1 ]]; then
    echo "bench.sh: --socketio, --node, --idle, --chat and --latency/--floor are separate suites; pick one" >&2
    exit 2
fi
NODE_APP=$ROOT/bench/node-socketio

APP_ID=bench
APP_KEY=bench-key
APP_SECRET=bench-secret-0123456789

# Both processes hold one descriptor per connection: raise the limit (soft up to hard).
want=65536
hard=$(ulimit -Hn)
if [[ "$hard" != unlimited && "$hard" -lt "$want" ]]; then want=$hard; fi
ulimit -n "$want" || echo "bench.sh: could not raise the open-files limit (now $(ulimit -n))" >&2
echo "bench.sh: open-files limit $(ulimit -n)" >&2

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    cargo build --release --bin switchboard --bin bench >&2
fi
if [[ $NODE == 1 ]]; then
    command -v node >/dev/null || { echo "bench.sh: --node needs node (20 or later)" >&2; exit 1; }
    if [[ ! -d "$NODE_APP/node_modules" ]]; then
        (cd "$NODE_APP" && npm ci --no-audit --no-fund >&2)
    fi
fi
SERVER_BIN=$ROOT/target/release/switchboard
BENCH_BIN=$ROOT/target/release/bench

mkdir -p "$OUT"
rm -f "$OUT"/*.json
DATA_DIR=$(mktemp -d -t switchboard-bench.XXXXXX)
URL=
SERVER_LOG=$OUT/server.log
SERVER_PID=

stop_server() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=
}

cleanup() {
    stop_server
    rm -rf "$DATA_DIR"
}
trap cleanup EXIT INT TERM

# Empties the PostgreSQL or MySQL database of BENCH_DATABASE_URL (the chat suite's own).
reset_database() {
    case $1 in
        postgres*) psql "$1" -qc 'DROP SCHEMA public CASCADE; CREATE SCHEMA public;' >&2 ;;
        mysql* | mariadb*)
            local db=${1##*/}
            db=${db%%\?*}
            mariadb -h 127.0.0.1 -u root -e "DROP DATABASE IF EXISTS \`$db\`; CREATE DATABASE \`$db\`;" >&2
            ;;
        *) echo "bench.sh: BENCH_DATABASE_URL must be postgres:// or mysql://" >&2; exit 2 ;;
    esac
}

# Starts the server of the suite (a fresh data directory each time) and sets SERVER_PID and URL.
# Port 0: the server picks a free port and logs it.
start_server() {
    rm -rf "$DATA_DIR" && mkdir -p "$DATA_DIR"
    echo "== $(date -u +%FT%TZ) starting the server" >>"$SERVER_LOG"
    # The address is read from what this start logs, after the lines of earlier starts.
    local skip
    skip=$(wc -l <"$SERVER_LOG")
    if [[ $FLOOR == 1 ]]; then
        taskset -c "$SERVER_CORE" "$BENCH_BIN" floor-server --listen 127.0.0.1:0 2>>"$SERVER_LOG" &
    elif [[ $NODE == 1 ]]; then
        PORT=0 taskset -c "$SERVER_CORE" node "$NODE_APP/server.mjs" >>"$SERVER_LOG" 2>&1 &
    elif [[ $CHAT == 1 ]]; then
        # Thousands of registrations from one address, and one account seeding a million DMs:
        # the auth and message limits are raised (the limits themselves are not what is measured).
        if [[ -n "${BENCH_DATABASE_URL:-}" ]]; then
            reset_database "$BENCH_DATABASE_URL"
        fi
        env ${BENCH_DATABASE_URL:+DATABASE_URL="$BENCH_DATABASE_URL"} SWITCHBOARD_AUTH_REQUESTS_PER_IP=1000000 \
            SWITCHBOARD_CHAT_MESSAGES_PER_SECOND=1000000 SWITCHBOARD_CHAT_MESSAGE_BURST=1000000 \
            SWITCHBOARD_LOG_FORMAT=text LOG_LEVEL=info \
            taskset -c "$SERVER_CORE" "$SERVER_BIN" serve --port 0 --bind 127.0.0.1 --data-dir "$DATA_DIR" \
            2>>"$SERVER_LOG" &
    else
        SWITCHBOARD_APP_ID=$APP_ID SWITCHBOARD_APP_KEY=$APP_KEY SWITCHBOARD_APP_SECRET=$APP_SECRET \
            SWITCHBOARD_LOG_FORMAT=text LOG_LEVEL=info \
            taskset -c "$SERVER_CORE" "$SERVER_BIN" serve --port 0 --bind 127.0.0.1 --data-dir "$DATA_DIR" \
            2>>"$SERVER_LOG" &
    fi
    SERVER_PID=$!

    URL=
    for _ in $(seq 1 300); do
        URL=$(tail -n +"$((skip + 1))" "$SERVER_LOG" 2>/dev/null | grep -o 'listening on http://[0-9.:]*' | head -n1 \
            | sed 's/^listening on //' || true)
        [[ -n "$URL" ]] && break
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            echo "bench.sh: the server exited during startup:" >&2
            cat "$SERVER_LOG" >&2
            exit 1
        fi
        sleep 0.1
    done
    if [[ -z "$URL" ]]; then
        echo "bench.sh: the server did not report its address within 30 s" >&2
        exit 1
    fi
    echo "bench.sh: server PID $SERVER_PID on $URL (core $SERVER_CORE), generator on core $CLIENT_CORE" >&2
}

: >"$SERVER_LOG"
start_server

# machine_busy_percent, wait_quiet
source "$ROOT/scripts/quiet-machine.sh"

FAILED=()
run() {
    local name=$1
    shift
    echo "bench.sh: == $name: $*" >&2
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "bench.sh: the server is gone; skipping $name" >&2
        echo "{\"scenario\": \"$name\", \"error\": \"server not running\"}" >"$OUT/$name.json"
        FAILED+=("$name")
        return
    fi
    wait_quiet
    if ! taskset -c "$CLIENT_CORE" "$BENCH_BIN" --url "$URL" --app-id "$APP_ID" --key "$APP_KEY" \
        --secret "$APP_SECRET" --server-pid "$SERVER_PID" "$@" >"$OUT/$name.json"; then
        FAILED+=("$name")
    fi
    # Let the server reap the closed connections before the next scenario.
    sleep 3
}

# The Socket.IO suite, against Switchboard or the Node server ($1: switchboard | node).
socketio_suite() {
    local sio=(--protocol socketio --flavour "$1")
    # Idle first, each on a fresh server: the baseline is taken before any other load touched
    # the heap.
    run sio-idle-ws-10000 idle --connections 10000 --settle 5 "${sio[@]}" --transport websocket
    stop_server
    start_server
    run sio-idle-polling-1000 idle --connections 1000 --settle 5 "${sio[@]}" --transport polling
    run sio-fanout-ws-1000 fanout --subscribers 1000 --rate 10 --duration 10 "${sio[@]}" --transport websocket
    run sio-fanout-polling-1000 fanout --subscribers 1000 --rate 5 --duration 10 "${sio[@]}" --transport polling
    run sio-fanout-max-ws-1000 fanout-max --subscribers 1000 --step-duration 5 "${sio[@]}" --transport websocket
    run sio-fanout-max-ws-10000 fanout-max --subscribers 10000 --step-duration 5 "${sio[@]}" --transport websocket
    run sio-http-32 http --concurrency 32 --duration 10 "${sio[@]}"
}

if [[ $NODE == 1 ]]; then
    socketio_suite node
elif [[ $CHAT == 1 ]]; then
    # Idle first on a fresh server; each later scenario registers its own users.
    run chat-idle-10000 chat idle --users 1000 --sockets-per-user 10 --settle 5
    stop_server
    start_server
    run chat-dm-2000 chat dm --users 1000 --rate 2000 --duration 10
    run chat-dm-5000 chat dm --users 1000 --rate 5000 --duration 10
    run chat-group-1000 chat group --members 1000 --rate 10 --duration 10
    run chat-history-1000000 chat history --messages 1000000 --queries 1000 --limit 100
elif [[ $IDLE == 1 ]]; then
    sio=(--protocol socketio --flavour switchboard)
    for i in 1 2; do
        [[ $i == 1 ]] || { stop_server; start_server; }
        run "idle-10000-$i" idle --connections 10000 --settle 5
        stop_server
        start_server
        run "sio-idle-ws-10000-$i" idle --connections 10000 --settle 5 "${sio[@]}" --transport websocket
        stop_server
        start_server
        run "sio-idle-polling-1000-$i" idle --connections 1000 --settle 5 "${sio[@]}" --transport polling
    done
elif [[ $SOCKETIO == 1 ]]; then
    socketio_suite switchboard
    # The mixed fan-out against Pusher alone at the same rate and event name, alternated: CPU per
    # delivery of a third each of Pusher, Notif and Socket.IO against 1,000 Pusher subscribers.
    # 50/s keeps the generator well under its core (100/s took 63-77 % of it with Pusher alone).
    for i in 1 2; do
        run "pusher-fanout-1000-at-50-$i" fanout --protocol pusher --event message --subscribers 1000 --rate 50 --duration 10
        run "mixed-fanout-1000-at-50-$i" fanout --protocol mixed --subscribers 1000 --rate 50 --duration 10
    done
elif [[ $LATENCY == 1 ]]; then
    run fanout-1000 fanout --subscribers 1000 --rate 10 --duration 10
    run fanout-10000 fanout --subscribers 10000 --rate 5 --duration 10
elif [[ $QUICK == 1 ]]; then
    run idle-2000 idle --connections 2000 --settle 2
    run fanout-1000 fanout --subscribers 1000 --rate 10 --duration 5
    run fanout-2000 fanout --subscribers 2000 --rate 5 --duration 5
    run fanout-max-1000 fanout-max --subscribers 1000 --step-duration 3 --max-steps 6
    run http-32 http --concurrency 32 --duration 5
else
    # Idle first: the server's RSS baseline is taken before any other load touched its heap.
    run idle-10000 idle --connections 10000 --settle 5
    run fanout-1000 fanout --subscribers 1000 --rate 10 --duration 10
    run fanout-10000 fanout --subscribers 10000 --rate 5 --duration 10
    run fanout-max-1000 fanout-max --subscribers 1000 --step-duration 5
    run fanout-max-10000 fanout-max --subscribers 10000 --step-duration 5
    run http-32 http --concurrency 32 --duration 10
fi

# One file holding every report, keyed by scenario run.
{
    echo "{"
    first=1
    for f in "$OUT"/*.json; do
        name=$(basename "$f" .json)
        [[ "$name" == results ]] && continue
        [[ $first == 1 ]] || echo ","
        first=0
        printf '"%s": ' "$name"
        if [[ -s "$f" ]]; then cat "$f"; else echo '{"error": "no output"}'; fi
    done
    echo "}"
} >"$OUT/results.json.tmp"
mv "$OUT/results.json.tmp" "$OUT/results.json"

if kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "bench.sh: server still running after the suite (PID $SERVER_PID), server RSS $(grep VmRSS /proc/"$SERVER_PID"/status | awk '{print $2, $3}')" >&2
else
    echo "bench.sh: WARNING: the server died during the suite; see $SERVER_LOG" >&2
    FAILED+=("server-died")
fi
echo "bench.sh: results in $OUT/results.json" >&2
if [[ ${#FAILED[@]} -gt 0 ]]; then
    echo "bench.sh: failed: ${FAILED[*]}" >&2
    exit 1
fi
