#!/usr/bin/env bash
# The one test command: lint, then every suite. Works on a fresh Debian
# machine with Rust installed (rustup); installs what else it needs.
set -euo pipefail
cd "$(dirname "$0")/.."

# --soak: the reliability suites run longer (more files under faults, a
# longer concurrency run). Each knob can also be set on its own.
if [ "${1:-}" = "--soak" ]; then
  export S3BGU_SOAK_FILES="${S3BGU_SOAK_FILES:-100}"
  export S3BGU_SOAK_MAX_MIB="${S3BGU_SOAK_MAX_MIB:-64}"
  export S3BGU_CONCURRENCY_SECS="${S3BGU_CONCURRENCY_SECS:-180}"
fi

step() { printf '\n== %s\n' "$*"; }

need_apt=()
command -v cc >/dev/null 2>&1 || need_apt+=(gcc libc6-dev)
command -v pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)
command -v ruby >/dev/null 2>&1 || need_apt+=(ruby)
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

# Shell scripts (shellcheck) and GitHub workflows (actionlint): the build and
# release pipelines cannot run here, so they are at least linted.
step "lint scripts and workflows (scripts/lint-ci.sh)"
./scripts/lint-ci.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

# No Swift toolchain or iOS SDK here: the iOS sources get a parse (tree-sitter
# grammars), which finds syntax errors only, never type or API errors.
step "iOS sources: syntax parse, not a compile (scripts/ios-syntax-check.sh)"
./scripts/ios-syntax-check.sh
# CocoaPods is not installed either: the podspec is evaluated with a stand-in
# Pod::Spec (its missing-engine message, platform, sources).
step "iOS podspec: evaluated without CocoaPods (scripts/podspec-check.rb)"
ruby scripts/podspec-check.rb

step "cargo test (engine, reference backend, test harness, CLI)"
cargo test --workspace --locked

# A phone's view of `s3bgu serve --listen 0.0.0.0:PORT`: a client in another
# network namespace (veth pair) uploads through the server's address there.
step "s3bgu serve from another network namespace (scripts/phone-reach.sh)"
./scripts/phone-reach.sh

step "Kotlin on the JVM (generated bindings, JNA, the engine and s3bgu serve)"
kotlin_started=$SECONDS
./bindings/kotlin-test/run.sh
echo "kotlin step took $((SECONDS - kotlin_started)) s"

# The Android module compiled against android-all 15 and react-android 0.87.1
# (Kotlin + codegen Java spec), then Robolectric with the real engine.
step "Android module on the JVM (android/test/run.sh: compile + Robolectric)"
./android/test/run.sh
# The same sources as the oldest app we claim compiles them: Kotlin 1.9.25
# (React Native 0.76, Expo 52) against react-android 0.76.5.
step "Android module with the floor's Kotlin (android/test/compile-floor.sh)"
./android/test/compile-floor.sh

# The benchmark harness at tiny sizes, so it cannot rot; the figures of a
# smoke run mean nothing (debug build, one rep). Full run: scripts/bench.sh.
step "benchmark smoke (scripts/bench.sh --smoke)"
./scripts/bench.sh --smoke

# TypeScript API, jest, TurboModule codegen, library build, example app
# bundles, then the Node backend kit. S3BGU_SKIP_JS=1 skips both (for a
# Rust-only loop; CI never sets it).
if [ "${S3BGU_SKIP_JS:-}" != 1 ]; then
  step "JavaScript (scripts/test-js.sh)"
  ./scripts/test-js.sh
  # Its own package: against the s3s-fs store, then s3bgu check and upload through it.
  step "Node backend kit (backend-kit/test/run.sh)"
  kit_started=$SECONDS
  ./backend-kit/test/run.sh
  echo "backend kit step took $((SECONDS - kit_started)) s"
fi

echo
echo "all suites passed"
