#!/usr/bin/env bash
# Runs every test: formatting, lints, Rust unit and integration tests, and the JavaScript suite
# with the official clients. Installs what it needs (npm packages) from the project's own files.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

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

step "all tests passed"
