#!/bin/sh
# Checks the global symbols of the engine's static archive (what an app's
# link sees): every function of the uniffi C header is defined, and nothing
# else is global. A global SQLite, ring or Rust std symbol would clash with
# another library the app links (op-sqlite, expo-sqlite, another Rust
# library), or bind the app's own SQLite calls to this cut-down one.
#
#   scripts/check-archive-symbols.sh [--prefix _] [--arch ARCH] ARCHIVE HEADER
#   scripts/check-archive-symbols.sh --list [--prefix _] HEADER
#       prints the header's functions (with the prefix), one a line: the
#       exported-symbols list build-ios.sh links with, so the list and the
#       check cannot drift apart.
#
# --prefix: the platform's C symbol prefix (`_` on Mach-O, none on ELF).
# --arch: the slice of a fat archive (Apple's nm -arch). NM picks the tool.
# POSIX sh and POSIX `nm -P` output, so the same logic runs on macOS (the
# release) and Linux (test/packaging/archive-symbols.test.mjs).
set -eu

# The function names the header declares ($2: prefix), one a line, sorted.
header_functions() {
  # A name preceded by a non-identifier character (no GNU \b) and followed by "(".
  grep -oE '(^|[^A-Za-z0-9_])(uniffi|ffi)_s3bgu_core_[A-Za-z0-9_]+\(' "$1" |
    sed -e 's/^[^a-z]*//' -e 's/($//' -e "s/^/$2/" | LC_ALL=C sort -u
}

prefix=""
arch=""
list=0
while [ $# -gt 1 ]; do
  case "$1" in
    --prefix) prefix="$2"; shift 2 ;;
    --arch) arch="$2"; shift 2 ;;
    --list) list=1; shift ;;
    *) break ;;
  esac
done
if [ "$list" = 1 ] && [ $# -eq 1 ]; then
  [ -s "$1" ] || { echo "check-archive-symbols: no header at $1" >&2; exit 2; }
  header_functions "$1" "$prefix"
  exit 0
fi
if [ $# -ne 2 ]; then
  echo "usage: $0 [--prefix _] [--arch ARCH] ARCHIVE HEADER" >&2
  exit 2
fi
archive="$1"
header="$2"
nm_tool="${NM:-nm}"
[ -s "$archive" ] || { echo "check-archive-symbols: no archive at $archive" >&2; exit 2; }
[ -s "$header" ] || { echo "check-archive-symbols: no header at $header" >&2; exit 2; }

# Defined global symbols of `nm -g -P` output on stdin, prefix removed, sorted.
# -P lines are "NAME TYPE VALUE [SIZE]"; archive member headers ("lib.a[x.o]:")
# and blank lines have no one-letter type; U, and w/v (weak references), are
# not definitions. Case is not looked at: a private extern (hidden
# visibility) that nm -g lists still links against the app's other objects.
defined_globals() {
  awk -v p="$1" 'NF >= 2 && length($2) == 1 && $2 != "U" && $2 != "w" && $2 != "v" {
      name = $1
      if (p != "" && substr(name, 1, length(p)) == p) name = substr(name, length(p) + 1)
      print name
    }' | LC_ALL=C sort -u
}

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
header_functions "$header" "" >"$work/wanted"
[ -s "$work/wanted" ] || { echo "check-archive-symbols: no uniffi function in $header" >&2; exit 2; }
if [ -n "$arch" ]; then
  "$nm_tool" -g -P -arch "$arch" "$archive" >"$work/nm" 2>"$work/nm.err" || { cat "$work/nm.err" >&2; exit 2; }
else
  "$nm_tool" -g -P "$archive" >"$work/nm" 2>"$work/nm.err" || { cat "$work/nm.err" >&2; exit 2; }
fi
defined_globals "$prefix" <"$work/nm" >"$work/globals"

LC_ALL=C comm -23 "$work/wanted" "$work/globals" >"$work/missing"
LC_ALL=C comm -13 "$work/wanted" "$work/globals" >"$work/extra"
label="$archive${arch:+ ($arch)}"
status=0
if [ -s "$work/missing" ]; then
  echo "FAIL $label: $(wc -l <"$work/missing" | tr -d ' ') functions of $(basename "$header") not defined, e.g. $(head -n 3 "$work/missing" | tr '\n' ' ')"
  status=1
fi
if [ -s "$work/extra" ]; then
  echo "FAIL $label: $(wc -l <"$work/extra" | tr -d ' ') global symbols besides the uniffi functions, e.g. $(head -n 5 "$work/extra" | tr '\n' ' ')"
  status=1
fi
if [ "$status" = 0 ]; then
  echo "ok   $label: exactly the $(wc -l <"$work/wanted" | tr -d ' ') functions of $(basename "$header") are global"
fi
exit "$status"
