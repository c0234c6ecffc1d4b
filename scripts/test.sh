#!/usr/bin/env bash
# Runs every test: formatting, lints, Rust unit and integration tests, and the JavaScript suite
# with the official clients. Installs what it needs (npm packages) from the project's own files.
# Each sub-suite's test count is checked against its floor in tests/floors: a suite that runs no
# tests, fewer than its floor, or not at all fails the run (node's runner exits 0 on "tests 0").
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
# "<suite> <count>" for every suite that ran.
counts="$logs/counts"
: >"$counts"

# Records the test count of each cargo target in the `cargo test` output `$1`, as
# cargo:<source path> (cargo:doc for doc-tests).
count_cargo() {
  awk '
    /^ *Running (unittests )?[^ ]+/ { suite = "cargo:" ($2 == "unittests" ? $3 : $2) }
    /^ *Doc-tests / { suite = "cargo:doc" }
    /^test result: / { for (i = 1; i <= NF; i++) if ($(i + 1) ~ /^passed/) { print suite, $i } }
  ' "$1" >>"$counts"
}

# Records the test count of a node --test run (its output in `$2`) as suite `$1`: TAP prints
# "# tests N", the spec reporter "ℹ tests N".
count_node() {
  local n
  n=$(sed -n -E 's/^(# |ℹ )tests ([0-9]+)$/\2/p' "$2" | tail -n 1)
  echo "$1 ${n:-0}" >>"$counts"
}

# Is something listening on 127.0.0.1:$1?
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Starts a local service that is down (the commands of this machine kind), then waits for it.
ensure_service() {
  local name=$1 port=$2 start=$3
  if listening "$port"; then return 0; fi
  echo "$name is not listening on $port: starting it"
  bash -c "$start" || true
  for _ in $(seq 1 60); do listening "$port" && return 0; sleep 0.5; done
  echo "$name did not come up on port $port" >&2
  return 1
}

step "services the tests need (PostgreSQL, MariaDB)"
ensure_service PostgreSQL 5432 'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start'
ensure_service MariaDB 3306 'start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd'
export TEST_POSTGRES_URL="${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
export TEST_MYSQL_URL="${TEST_MYSQL_URL:-mysql://root@127.0.0.1:3306/test}"

step "cargo fmt --check"
cargo fmt --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

step "cargo build (the binary the JavaScript suite runs)"
cargo build --bins

step "cargo test"
cargo test 2>&1 | tee "$logs/cargo"
count_cargo "$logs/cargo"

step "schemathesis: the HTTP API against its OpenAPI document (/openapi.json)"
scripts/schemathesis.sh target/debug/switchboard 2>&1 | tee "$logs/schemathesis"
# The operations it tested, from its closing "schemathesis: N passed, N failed" line.
sed -n -E 's/^schemathesis: ([0-9]+) passed, [0-9]+ failed$/schemathesis \1/p' "$logs/schemathesis" >>"$counts"

step "JavaScript suite (pusher-js, pusher, laravel-echo, socket.io-client)"
(
  cd tests/js
  npm ci --no-audit --no-fund --loglevel=error
  SWITCHBOARD_BIN="$PWD/../../target/debug/switchboard" npm test 2>&1 | tee "$logs/js"
)
count_node npm:tests/js "$logs/js"

# Drops and recreates database $2 on the server of URL $1 (postgres:// or mysql://); prints the
# new database's URL.
fresh_db() {
  local url=$1 db=$2
  case $url in
    postgres*) psql "$url" -qX -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >&2 ;;
    mysql*)
      [[ $url =~ ^mysql://([^:@/]+)(:([^@]*))?@([^:/]+)(:([0-9]+))?/ ]] || { echo "cannot read $url" >&2; return 1; }
      MYSQL_PWD="${BASH_REMATCH[3]}" mysql -u "${BASH_REMATCH[1]}" -h "${BASH_REMATCH[4]}" -P "${BASH_REMATCH[6]:-3306}" \
        -e "DROP DATABASE IF EXISTS $db; CREATE DATABASE $db" >&2 ;;
  esac
  echo "${url%/*}/$db"
}

# The chat suite once per database, each a fresh one (SQLite: the server's temp data dir).
for backend in sqlite postgres mysql; do
  step "JavaScript chat suite (socket.io-client, fetch) on $backend"
  case $backend in
    sqlite) url= ;;
    postgres) url=$(fresh_db "$TEST_POSTGRES_URL" switchboard_chat_js) ;;
    mysql) url=$(fresh_db "$TEST_MYSQL_URL" switchboard_chat_js) ;;
  esac
  (
    cd tests/js
    env ${url:+DATABASE_URL="$url"} SWITCHBOARD_BIN="$PWD/../../target/debug/switchboard" npm run test:chat 2>&1 \
      | tee "$logs/chat-$backend"
  )
  count_node "npm:chat-$backend" "$logs/chat-$backend"
done

step "browser tests (notifmoo.js, socket.io-client and /docs in Debian's Chromium)"
if ! command -v chromium >/dev/null; then
  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
fi
(
  cd tests/browser
  npm ci --no-audit --no-fund --loglevel=error
  SWITCHBOARD_BIN="$PWD/../../target/debug/switchboard" npm test 2>&1 | tee "$logs/browser"
)
count_node npm:tests/browser "$logs/browser"

step "test counts against tests/floors"
short=0
while read -r suite floor _; do
  case $suite in '' | '#'*) continue ;; esac
  ran=$(awk -v s="$suite" '$1 == s { n += $2; seen = 1 } END { print seen ? n : "none" }' "$counts")
  if [ "$ran" = none ]; then
    printf '  %-30s did not run (floor %s)\n' "$suite" "$floor"
    short=1
  elif [ "$ran" -eq 0 ] || [ "$ran" -lt "$floor" ]; then
    printf '  %-30s %5s tests, below its floor of %s\n' "$suite" "$ran" "$floor"
    short=1
  else
    printf '  %-30s %5s tests (floor %s)\n' "$suite" "$ran" "$floor"
  fi
done <tests/floors
# Targets without a floor: none may hold tests (they would go unguarded).
while read -r suite n; do
  if ! awk -v s="$suite" '$1 == s { found = 1 } END { exit !found }' tests/floors; then
    if [ "$n" -gt 0 ]; then
      printf '  %-30s %5s tests and no floor: add one to tests/floors\n' "$suite" "$n"
      short=1
    else
      printf '  %-30s %5s tests (no tests there, no floor)\n' "$suite" "$n"
    fi
  fi
done <"$counts"
if [ "$short" -ne 0 ]; then
  echo "a suite ran no tests, too few, or none at all: see above" >&2
  exit 1
fi

step "all tests passed"
