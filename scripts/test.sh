#!/usr/bin/env bash
# The one test command: lint, then every suite. Works on a fresh Debian
# machine with Rust installed (rustup); installs what else it needs.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

need_apt=()
command -v cc >/dev/null 2>&1 || need_apt+=(gcc libc6-dev)
command -v pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)
if [ ${#need_apt[@]} -gt 0 ]; then
  step "installing ${need_apt[*]}"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${need_apt[@]}"
fi
if ! cargo clippy --version >/dev/null 2>&1 || ! cargo fmt --version >/dev/null 2>&1; then
  step "installing clippy and rustfmt"
  rustup component add clippy rustfmt
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test (engine, reference backend, test harness, CLI)"
cargo test --workspace --locked

step "Kotlin on the JVM (generated bindings, JNA, the engine and s3bgu serve)"
kotlin_started=$SECONDS
./bindings/kotlin-test/run.sh
echo "kotlin step took $((SECONDS - kotlin_started)) s"

echo
echo "all suites passed"
