#!/usr/bin/env bash
# Kotlin-on-the-JVM tests of the generated bindings: regenerates the bindings
# from the debug library, compiles them with the tests (kotlinc from the npm
# package kotlin-compiler), and runs JUnit 4 with JNA against the library and
# a reference backend (`s3bgu serve`, embedded store) on loopback.
#
# Needs java (17+), npm, and Debian's libjna-java and junit4 (installed when
# missing). kotlinc is cached in ~/.cache/s3bgu-ci/kotlin. Honours
# CARGO_TARGET_DIR. Prints "N passed, N failed" last; exits non-zero on failure.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
KOTLIN_VERSION=2.4.20
cache="${S3BGU_KOTLIN_CACHE:-$HOME/.cache/s3bgu-ci/kotlin}"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

need_apt=()
command -v java >/dev/null 2>&1 || need_apt+=(default-jdk-headless)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
[ -f /usr/share/java/jna.jar ] || need_apt+=(libjna-java)
[ -f /usr/share/java/junit4.jar ] || need_apt+=(junit4)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing ${need_apt[*]}"
  as_root apt-get update -qq
  as_root apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

kotlin_home="$cache/kotlin-compiler-$KOTLIN_VERSION"
if [ ! -x "$kotlin_home/bin/kotlinc" ]; then
  echo "fetching kotlin-compiler $KOTLIN_VERSION from npm"
  mkdir -p "$cache"
  tgz="$cache/kotlin-compiler-$KOTLIN_VERSION.tgz"
  if [ ! -f "$tgz" ]; then
    (cd "$cache" && npm pack --silent "kotlin-compiler@$KOTLIN_VERSION" >/dev/null)
  fi
  rm -rf "$kotlin_home.tmp" && mkdir -p "$kotlin_home.tmp"
  tar -xzf "$tgz" -C "$kotlin_home.tmp"
  chmod +x "$kotlin_home.tmp/package/bin/"*
  rm -rf "$kotlin_home" && mv "$kotlin_home.tmp/package" "$kotlin_home" && rm -rf "$kotlin_home.tmp"
fi
klib="$kotlin_home/lib"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "building the library, the bindgen and s3bgu (debug)"
(cd "$root" && cargo build --locked -q --workspace --all-targets)
lib="$("$root/bindings/generate.sh" "$work/generated" | tail -n 1)"

cp_compile="/usr/share/java/jna.jar:/usr/share/java/junit4.jar:$klib/kotlinx-coroutines-core-jvm.jar"
echo "compiling the bindings and the tests"
start=$(date +%s)
"$kotlin_home/bin/kotlinc" -nowarn -jvm-target 17 \
  "$work/generated/kotlin" "$here/src" \
  -cp "$cp_compile" -d "$work/tests.jar" 2>&1 | grep -v '^warning:' || true
[ -f "$work/tests.jar" ] || { echo "kotlinc failed"; echo "0 passed, 1 failed"; exit 1; }
echo "compiled in $(( $(date +%s) - start )) s"

cp_run="$work/tests.jar:$cp_compile:/usr/share/java/hamcrest-core.jar:$klib/kotlin-stdlib.jar"
java -Djna.library.path="$(dirname "$lib")" \
  -Ds3bgu.cli="$target/debug/s3bgu" \
  -Ds3bgu.httpsHarness="$target/debug/https-harness" \
  -Ds3bgu.bindings.committed="$root" \
  -Ds3bgu.bindings.generated="$work/generated" \
  -cp "$cp_run" com.s3bguploader.core.test.MainKt
