#!/usr/bin/env bash
# Fuzzes the HTTP API against its own OpenAPI document with schemathesis: the real binary on a
# free port with a fresh data dir, a known app (id, key, secret), an admin account whose token
# goes with every request (and the app secret as `x-app-key`). Fails on any server error (5xx)
# or any answer that contradicts the document. Prints "schemathesis: N passed, N failed" (the
# operations tested) for scripts/test.sh's floors.
#
#   scripts/schemathesis.sh [path to the switchboard binary]   (default: target/debug/switchboard)
#   SCHEMATHESIS_EXAMPLES=n   test cases per operation (default 25)
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${1:-target/debug/switchboard}
examples=${SCHEMATHESIS_EXAMPLES:-25}
venv=target/schemathesis-venv
requirements=tests/schemathesis/requirements.txt

# The pinned tools, installed once per change of the requirements.
if ! cmp -s "$requirements" "$venv/.installed" 2>/dev/null; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
  cp "$requirements" "$venv/.installed"
fi

work=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export SWITCHBOARD_BIND=127.0.0.1 SWITCHBOARD_PORT=$port SWITCHBOARD_DATA_DIR=$work/data
export SWITCHBOARD_APP_ID=fuzz-app SWITCHBOARD_APP_KEY=fuzz-key SWITCHBOARD_APP_SECRET=fuzz-secret-0123456789
export JWT_SECRET=fuzz-jwt-secret-0123456789abcdef0123456789 LOG_LEVEL=warn
# Fuzzing sends many requests from one address; the per-address limits are not under test.
export SWITCHBOARD_REQUESTS_PER_IP_PER_SECOND=0 SWITCHBOARD_LOGIN_PER_MINUTE=100000 SWITCHBOARD_REGISTER_PER_MINUTE=100000
export SWITCHBOARD_ADMIN_PASSWORD=fuzz-admin-password

"$bin" setup --email admin@fuzz.test --name Admin >"$work/setup.log" 2>&1
"$bin" serve >"$work/server.log" 2>&1 &
server_pid=$!
base=http://127.0.0.1:$port
for _ in $(seq 1 100); do
  curl -fs "$base/health" >/dev/null 2>&1 && break
  sleep 0.2
done
token=$(curl -fs -H 'content-type: application/json' \
  -d '{"email":"admin@fuzz.test","password":"fuzz-admin-password"}' "$base/auth/login" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')

# Operations that take the fuzzing account away from the rest (delete it, deactivate it,
# change its password) run last, on their own.
last=(--include-name "DELETE /users/me" --include-name "PUT /api/admin/update" --include-name "PUT /api/auth/profile/update")
first=("${last[@]/--include-name/--exclude-name}")
# One worker: hypothesis parses lambda sources with ast.parse, and CPython 3.11 races when two
# threads do that at once ("AST constructor recursion depth mismatch", CPython gh-106905), which
# failed a CI run with two errors that had nothing to do with the server.
fuzz() {
  local report=$1
  shift
  "$venv/bin/schemathesis" --no-color run "$base/openapi.json" \
    --checks not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance \
    --phases examples,coverage,fuzzing \
    --max-examples "$examples" \
    --seed 16 \
    --workers 1 \
    --request-timeout 10 \
    --generation-database none \
    --generation-with-security-parameters false \
    -H "Authorization: Bearer $token" \
    -H "x-app-key: fuzz-secret-0123456789" \
    --report junit --report-junit-path "$work/$report" \
    "$@" 2>&1 | tee -a "$work/run.log"
  return "${PIPESTATUS[0]}"
}
set +e
fuzz junit-1.xml "${first[@]}"
status=$?
fuzz junit-2.xml "${last[@]}"
status2=$?
set -e
[ "$status" -ne 0 ] || status=$status2

# Operations tested, from the JUnit report: a test case per operation.
read -r total failed < <(python3 - "$work"/junit-*.xml <<'EOF'
import sys
import xml.etree.ElementTree as ET

cases = [c for path in sys.argv[1:] for c in ET.parse(path).getroot().iter("testcase")]
bad = [c for c in cases if c.find("failure") is not None or c.find("error") is not None]
print(len(cases), len(bad))
EOF
)
echo "schemathesis: $((total - failed)) passed, $failed failed"
if [ "$status" -ne 0 ]; then
  echo "schemathesis failed (exit $status); the server's log:" >&2
  tail -n 50 "$work/server.log" >&2
  exit "$status"
fi
