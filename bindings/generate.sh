#!/usr/bin/env bash
# Builds the engine library and generates its Kotlin and Swift bindings from
# it (uniffi library mode).
#
#   bindings/generate.sh            regenerate bindings/kotlin and bindings/swift (commit them)
#   bindings/generate.sh OUT_DIR    generate into OUT_DIR/kotlin and OUT_DIR/swift
#
# Honours CARGO_TARGET_DIR. Prints the library it used on the last line.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$root/bindings}"
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

rm -rf "$out/kotlin" "$out/swift"
mkdir -p "$out/kotlin" "$out/swift"
"$bindgen" generate "$lib" --language kotlin --out-dir "$out/kotlin" --no-format
"$bindgen" generate "$lib" --language swift --out-dir "$out/swift" --no-format
echo "$lib"
