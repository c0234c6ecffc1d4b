#!/usr/bin/env bash
# Runs every test: formatting, lints, Rust unit and integration tests, and the JavaScript suite
# with the official clients. Installs what it needs (npm packages) from the project's own files.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

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
cargo test

step "JavaScript suite (pusher-js, pusher, laravel-echo)"
(
  cd tests/js
  npm ci --no-audit --no-fund --loglevel=error
  SWITCHBOARD_BIN="$PWD/../../target/debug/switchboard" npm test
)

step "browser test (notifmoo.js in Debian's Chromium)"
if ! command -v chromium >/dev/null; then
  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
fi
(
  cd tests/browser
  npm ci --no-audit --no-fund --loglevel=error
  SWITCHBOARD_BIN="$PWD/../../target/debug/switchboard" npm test
)

step "all tests passed"
