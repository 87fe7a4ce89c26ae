#!/usr/bin/env bash
# Builds the engine for iOS as a static xcframework where the podspec vendors
# it: ios/S3bguCore.xcframework (slices ios-arm64 and
# ios-arm64_x86_64-simulator; header S3bguCoreFFI.h; the podspec points
# Swift at ios/generated/S3bguCoreFFI.modulemap for the module S3bguCoreFFI).
#
#   scripts/build-ios.sh
#
# Needs: macOS with Xcode (xcodebuild, ld, libtool, nmedit, strip, lipo, nm, otool), rustup, network for
# the first run (rustup targets). Honours CARGO_TARGET_DIR.
#
# What it guarantees, or it fails:
#   - device (aarch64-apple-ios) and simulator (aarch64-apple-ios-sim +
#     x86_64-apple-ios, merged with lipo) static libraries, deployment target
#     iOS 15.1, the `mobile` profile;
#   - the Swift bindings generated from the built library equal the committed
#     ones (ios/generated), and every function their C header declares is
#     defined in each slice.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

export IPHONEOS_DEPLOYMENT_TARGET=15.1
DEVICE=aarch64-apple-ios
SIMULATORS=(aarch64-apple-ios-sim x86_64-apple-ios)
out="$root/ios/S3bguCore.xcframework"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
generated="$root/ios/generated"
unstripped="$root/ios/build/unstripped"

fail() { echo "build-ios: $*" >&2; exit 1; }
step() { printf '\n== %s\n' "$*"; }

[ "$(uname -s)" = Darwin ] || fail "needs macOS with Xcode (xcodebuild -create-xcframework)"
for tool in xcodebuild ld libtool nmedit strip lipo nm otool; do
  command -v "$tool" >/dev/null 2>&1 || fail "$tool not found (install Xcode and its command line tools)"
done

step "rust targets: $DEVICE ${SIMULATORS[*]}"
rustup target add "$DEVICE" "${SIMULATORS[@]}"

# -- build ------------------------------------------------------------------------
for triple in "$DEVICE" "${SIMULATORS[@]}"; do
  step "cargo build --target $triple --profile mobile (iOS $IPHONEOS_DEPLOYMENT_TARGET)"
  # rustc and the cc crate (bundled SQLite) both read IPHONEOS_DEPLOYMENT_TARGET.
  # Only the staticlib crate type: built alone it gets the profile's full LTO
  # (one object, no embedded bitcode) instead of an archive of every
  # dependency's objects. Strip off: uniffi-bindgen reads the symbol table,
  # and the app's link strips the final binary anyway.
  CARGO_PROFILE_MOBILE_STRIP=false \
    cargo rustc --locked -p s3bgu-core --lib --crate-type staticlib --profile mobile --target "$triple"
  [ -s "$target_dir/$triple/mobile/libs3bgu_core.a" ] || fail "no libs3bgu_core.a for $triple"
done
device_lib="$target_dir/$DEVICE/mobile/libs3bgu_core.a"

step "bindings: generated from the built library = committed"
"$root/scripts/check-bindings.sh" swift "$device_lib"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# True when dotted version $1 <= $2 (sort -V is not in every sort).
version_le() {
  awk -v a="$1" -v b="$2" 'BEGIN {
    n = split(a, x, "."); m = split(b, y, ".")
    for (i = 1; i <= (n > m ? n : m); i++) {
      if ((x[i] + 0) < (y[i] + 0)) exit 0
      if ((x[i] + 0) > (y[i] + 0)) exit 1
    }
    exit 0
  }'
}

step "hide everything but the uniffi functions (one prelinked object per slice)"
# The exported-symbols list is the check's own reading of the header (Mach-O
# names: leading _), so what is exported and what is checked cannot differ.
exported="$work/exported.txt"
"$root/scripts/check-archive-symbols.sh" --list --prefix _ "$generated/S3bguCoreFFI.h" >"$exported"
[ -s "$exported" ] || fail "no function found in $generated/S3bguCoreFFI.h"
rm -rf "$unstripped"
prelink() {
  local triple=$1 arch=$2 in out
  in="$target_dir/$triple/mobile/libs3bgu_core.a"
  out="$work/$triple/libs3bgu_core.a"
  mkdir -p "$work/$triple" "$unstripped/$triple"
  # ld(1): -r with -exported_symbols_list makes every global not listed a
  # private extern, and -r then turns private externs into local symbols
  # (unless -keep_private_externs). -force_load takes every member of the
  # archive (the engine, std, compiler builtins, SQLite's C objects).
  xcrun ld -r -arch "$arch" -exported_symbols_list "$exported" -force_load "$in" -o "$work/$triple/s3bgu_core.o"
  # nmedit(1) -s: every defined global not in the list becomes static. A
  # no-op after the line above, unless a linker version ignores the list with
  # -r; the check below fails the build if anything stays global either way.
  xcrun nmedit -s "$exported" "$work/$triple/s3bgu_core.o"
  rm -f "$out"
  xcrun libtool -static -o "$out" "$work/$triple/s3bgu_core.o"
  cp "$out" "$unstripped/$triple/libs3bgu_core.a"
  # -S: debug symbols only; the local symbols stay for the app's dSYM.
  xcrun strip -S "$out"
  printf '%-28s %10s bytes (%s unstripped)\n' "$triple" "$(wc -c <"$out" | tr -d ' ')" "$(wc -c <"$unstripped/$triple/libs3bgu_core.a" | tr -d ' ')"
}
prelink "$DEVICE" arm64
prelink aarch64-apple-ios-sim arm64
prelink x86_64-apple-ios x86_64
device_lib="$work/$DEVICE/libs3bgu_core.a"

step "lipo: one simulator library (arm64 + x86_64)"
sim_lib="$work/simulator/libs3bgu_core.a"
mkdir -p "$work/simulator"
sim_inputs=()
for triple in "${SIMULATORS[@]}"; do sim_inputs+=("$work/$triple/libs3bgu_core.a"); done
lipo -create "${sim_inputs[@]}" -output "$sim_lib"
lipo -info "$sim_lib"

step "checks: only the uniffi functions global, deployment target of each slice"
for lib in "$device_lib" "$sim_lib"; do
  # nm on a fat archive prints every architecture: each is checked alone.
  for arch in $(lipo -archs "$lib"); do
    "$root/scripts/check-archive-symbols.sh" --prefix _ --arch "$arch" "$lib" "$generated/S3bguCoreFFI.h" ||
      fail "$lib ($arch): the global symbols are not exactly the uniffi functions"
    # Members built by rustup's std may target an older iOS; none may be newer
    # than the app's floor, or linking a 15.1 app warns and may not run.
    minos=""
    for v in $(otool -arch "$arch" -l "$lib" | awk '$1 == "minos" { print $2 }'); do
      if [ -z "$minos" ] || ! version_le "$v" "$minos"; then minos="$v"; fi
    done
    [ -n "$minos" ] || fail "$lib ($arch) has no LC_BUILD_VERSION minos"
    version_le "$minos" "$IPHONEOS_DEPLOYMENT_TARGET" ||
      fail "$lib ($arch) has objects built for iOS $minos, newer than $IPHONEOS_DEPLOYMENT_TARGET"
    echo "ok   $lib ($arch): newest minos $minos"
  done
done

step "xcodebuild -create-xcframework"
headers="$work/headers"
mkdir -p "$headers"
cp "$generated/S3bguCoreFFI.h" "$headers/"
# No module.modulemap here: the pod names the module map explicitly
# (ios/generated/S3bguCoreFFI.modulemap, -fmodule-map-file in the podspec),
# and a second definition of the module would clash with it.
rm -rf "$out"
xcodebuild -create-xcframework \
  -library "$device_lib" -headers "$headers" \
  -library "$sim_lib" -headers "$headers" \
  -output "$out"

for slice in ios-arm64 ios-arm64_x86_64-simulator; do
  for f in libs3bgu_core.a Headers/S3bguCoreFFI.h; do
    [ -s "$out/$slice/$f" ] || fail "the xcframework has no $slice/$f"
  done
done
[ -s "$out/Info.plist" ] || fail "the xcframework has no Info.plist"
for slice in ios-arm64 ios-arm64_x86_64-simulator; do
  printf 'slice %-28s %10s bytes\n' "$slice" "$(wc -c <"$out/$slice/libs3bgu_core.a" | tr -d ' ')"
done
du -sh "$out"
echo "build-ios: done ($out)"
