#!/usr/bin/env bash
# Builds the engine library and generates its Kotlin and Swift bindings from
# it (uniffi library mode).
#
#   bindings/generate.sh            regenerate the committed bindings (commit them):
#                                   android/src/main/java/com/s3bguploader/core/ (Kotlin)
#                                   ios/generated/ (Swift, C header, module map)
#   bindings/generate.sh OUT_DIR    generate into OUT_DIR/kotlin and OUT_DIR/swift
#
# Honours CARGO_TARGET_DIR. Prints the library it used on the last line.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-}"
target="${CARGO_TARGET_DIR:-$root/target}"
cd "$root"

# The same targets and features as `cargo test --workspace`, so after the
# tests this only links the bindgen instead of rebuilding dependencies.
cargo build --locked -q --workspace --all-targets
case "$(uname -s)" in
  Darwin) lib="$target/debug/libs3bgu_core.dylib" ;;
  *) lib="$target/debug/libs3bgu_core.so" ;;
esac
bindgen="$target/debug/uniffi-bindgen"

if [ -n "$out" ]; then
  kotlin_out="$out/kotlin"
  swift_out="$out/swift"
else
  kotlin_out="$(mktemp -d)"
  swift_out="$root/ios/generated"
fi
rm -rf "$swift_out"
mkdir -p "$kotlin_out" "$swift_out"
"$bindgen" generate "$lib" --language kotlin --out-dir "$kotlin_out" --no-format
"$bindgen" generate "$lib" --language swift --out-dir "$swift_out" --no-format
if [ -z "$out" ]; then
  # The Android library compiles the Kotlin bindings with its own sources;
  # the package directory holds nothing else, so it is replaced whole.
  core="$root/android/src/main/java/com/s3bguploader/core"
  rm -rf "$core"
  mkdir -p "$(dirname "$core")"
  mv "$kotlin_out/com/s3bguploader/core" "$core"
  rm -rf "$kotlin_out"
fi
echo "$lib"
