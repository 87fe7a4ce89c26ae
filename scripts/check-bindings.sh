#!/usr/bin/env bash
# Regenerates the uniffi bindings from a built engine library (uniffi library
# mode reads the metadata the macros embedded in it) and fails when they differ
# from the committed ones, so a shipped binary never pairs with stale bindings.
#
#   scripts/check-bindings.sh kotlin LIB   LIB: a .so with its symbol table
#                                           (unstripped); compares with
#                                           android/src/main/java/com/s3bguploader/core
#   scripts/check-bindings.sh swift LIB    LIB: a .a, .so or .dylib; compares
#                                           with ios/generated
#
# The generator is the workspace's own uniffi-bindgen (bindings/), built for
# the host; UNIFFI_BINDGEN overrides it. Honours CARGO_TARGET_DIR.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

if [ $# -ne 2 ] || { [ "$1" != kotlin ] && [ "$1" != swift ]; }; then
  echo "usage: $0 kotlin|swift LIB" >&2
  exit 2
fi
language=$1
lib=$2
[ -s "$lib" ] || { echo "check-bindings: no library at $lib" >&2; exit 2; }

bindgen="${UNIFFI_BINDGEN:-}"
if [ -z "$bindgen" ]; then
  (cd "$root" && cargo build --locked -q -p uniffi-bindgen --bin uniffi-bindgen)
  bindgen="${CARGO_TARGET_DIR:-$root/target}/debug/uniffi-bindgen"
fi

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
# Same flags as bindings/generate.sh, which wrote the committed files.
if ! "$bindgen" generate "$lib" --language "$language" --out-dir "$out" --no-format >/dev/null 2>"$out.err"; then
  head -n 1 "$out.err" >&2
  rm -f "$out.err"
  # uniffi reads its metadata from the symbol table, which strip removes.
  echo "check-bindings: uniffi-bindgen could not read $lib (a stripped library has no uniffi metadata: use the unstripped build)" >&2
  exit 1
fi
rm -f "$out.err"

case "$language" in
  kotlin)
    fresh="$out/com/s3bguploader/core"
    committed="$root/android/src/main/java/com/s3bguploader/core"
    ;;
  swift)
    fresh="$out"
    committed="$root/ios/generated"
    ;;
esac
if [ ! -d "$fresh" ] || [ -z "$(ls -A "$fresh")" ]; then
  echo "check-bindings: uniffi-bindgen generated no $language bindings from $lib" >&2
  exit 1
fi
if ! diff -ru "$committed" "$fresh" >"$out.diff"; then
  head -n 40 "$out.diff"
  rm -f "$out.diff"
  echo "check-bindings: the $language bindings generated from $lib differ from the committed ones in ${committed#"$root"/}; run bindings/generate.sh and commit the result" >&2
  exit 1
fi
rm -f "$out.diff"
echo "check-bindings: $language bindings generated from $(basename "$lib") match ${committed#"$root"/} ($(find "$fresh" -type f | wc -l) files)"
