#!/usr/bin/env bash
# Checks Android engine libraries before they are shipped:
#   1. every LOAD segment is aligned to at least 16 KB (p_align >= 16384), so
#      the library loads on devices with 16 KB pages (Google Play requires it
#      for apps targeting Android 15+);
#   2. every uniffi symbol the committed Kotlin bindings call through JNA is
#      exported (defined, in .dynsym), so no call fails at run time with
#      "Error looking up function";
#   3. the library is at most S3BGU_MAX_LIB_BYTES (default 3.5 MiB, the
#      benchmark's budget for one ABI's stripped engine): each size is
#      printed.
#
#   scripts/check-android-libs.sh LIB.so...
#
# READELF picks the tool (default: llvm-readelf, else readelf); the NDK's
# llvm-readelf reads every Android ABI, binutils' readelf does too.
# S3BGU_BINDINGS overrides the Kotlin file the symbol list is read from.
# Portable to macOS's own tools (bash 3.2, BSD grep/sed): no GNU-only options.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bindings="${S3BGU_BINDINGS:-$root/android/src/main/java/com/s3bguploader/core/s3bgu_core.kt}"
min_align=16384
max_bytes="${S3BGU_MAX_LIB_BYTES:-3670016}"

if [ $# -eq 0 ]; then
  echo "usage: $0 LIB.so..." >&2
  exit 2
fi
readelf="${READELF:-}"
if [ -z "$readelf" ]; then
  if command -v llvm-readelf >/dev/null 2>&1; then readelf=llvm-readelf; else readelf=readelf; fi
fi
command -v "$readelf" >/dev/null 2>&1 || { echo "check-android-libs: $readelf not found (set READELF)" >&2; exit 2; }
[ -s "$bindings" ] || { echo "check-android-libs: no bindings at $bindings" >&2; exit 2; }

wanted="$(mktemp)"
trap 'rm -f "$wanted"' EXIT
# A name preceded by a non-identifier character (GNU grep's \b is not BSD's).
# No match is reported below, not by grep's status under pipefail.
{ grep -oE '(^|[^A-Za-z0-9_])(uniffi|ffi)_s3bgu_core_[A-Za-z0-9_]+' "$bindings" || true; } |
  sed 's/^[^a-z]*//' | LC_ALL=C sort -u >"$wanted"
[ -s "$wanted" ] || { echo "check-android-libs: no uniffi symbol named in $bindings" >&2; exit 2; }

failed=0
for lib in "$@"; do
  if [ ! -s "$lib" ]; then
    echo "FAIL $lib: missing or empty"
    failed=1
    continue
  fi
  # Program headers, one per line: "LOAD off vaddr paddr filesz memsz flags align".
  # The flags column may hold spaces ("R E"), so the alignment is the last field.
  loads="$("$readelf" -lW "$lib" | awk '$1 == "LOAD" { print $NF }')"
  if [ -z "$loads" ]; then
    echo "FAIL $lib: no LOAD segment (not a shared library?)"
    failed=1
    continue
  fi
  bad_align=""
  count=0
  while read -r align; do
    count=$((count + 1))
    if [ $((align)) -lt $min_align ]; then bad_align="$bad_align $align"; fi
  done <<<"$loads"
  if [ -n "$bad_align" ]; then
    echo "FAIL $lib: LOAD segments aligned below 16 KB:$bad_align (link with -z max-page-size=16384)"
    failed=1
  fi
  # Defined dynamic symbols: the section index column is UND for imports.
  missing="$(comm -23 "$wanted" <("$readelf" --dyn-syms -W "$lib" | awk '$7 != "UND" && NF >= 8 { print $8 }' | sed 's/@.*//' | LC_ALL=C sort -u))"
  if [ -n "$missing" ]; then
    echo "FAIL $lib: $(wc -l <<<"$missing") uniffi symbols the bindings call are not exported, e.g. $(head -n 3 <<<"$missing" | tr '\n' ' ')"
    failed=1
  fi
  size="$(wc -c <"$lib" | tr -d ' ')"
  too_big=""
  if [ "$size" -gt "$max_bytes" ]; then
    echo "FAIL $lib: $size bytes, above the budget of $max_bytes bytes (S3BGU_MAX_LIB_BYTES)"
    too_big=1
    failed=1
  fi
  if [ -z "$bad_align" ] && [ -z "$missing" ] && [ -z "$too_big" ]; then
    echo "ok   $lib: $count LOAD segments aligned >= 16 KB, $(wc -l <"$wanted" | tr -d ' ') uniffi symbols exported, $size bytes (budget $max_bytes)"
  fi
done
exit $failed
