#!/usr/bin/env bash
# Builds the engine for iOS as a static xcframework where the podspec vendors
# it: ios/S3bguCore.xcframework (slices ios-arm64 and
# ios-arm64_x86_64-simulator; header S3bguCoreFFI.h; the podspec points
# Swift at ios/generated/S3bguCoreFFI.modulemap for the module S3bguCoreFFI).
#
#   scripts/build-ios.sh
#
# Needs: macOS with Xcode (xcodebuild, lipo, nm, otool), rustup, network for
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

fail() { echo "build-ios: $*" >&2; exit 1; }
step() { printf '\n== %s\n' "$*"; }

[ "$(uname -s)" = Darwin ] || fail "needs macOS with Xcode (xcodebuild -create-xcframework)"
for tool in xcodebuild lipo nm otool; do
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
step "lipo: one simulator library (arm64 + x86_64)"
sim_lib="$work/simulator/libs3bgu_core.a"
mkdir -p "$work/simulator"
sim_inputs=()
for triple in "${SIMULATORS[@]}"; do sim_inputs+=("$target_dir/$triple/mobile/libs3bgu_core.a"); done
lipo -create "${sim_inputs[@]}" -output "$sim_lib"
lipo -info "$sim_lib"

step "checks: deployment target and exported functions of each slice"
# Every function the generated C header declares, as Mach-O names (leading _).
wanted="$work/wanted.txt"
grep -oE '\b(uniffi|ffi)_s3bgu_core_[A-Za-z0-9_]+\(' "$generated/S3bguCoreFFI.h" | tr -d '(' | sed 's/^/_/' | sort -u >"$wanted"
[ -s "$wanted" ] || fail "no function found in $generated/S3bguCoreFFI.h"
for lib in "$device_lib" "$sim_lib"; do
  # nm on a fat archive prints every architecture: a symbol must be in each.
  for arch in $(lipo -archs "$lib"); do
    missing="$(comm -23 "$wanted" <(nm -gU -arch "$arch" "$lib" 2>/dev/null | awk 'NF >= 3 { print $3 }' | sort -u))"
    [ -z "$missing" ] || fail "$lib ($arch) lacks $(wc -l <<<"$missing") functions of S3bguCoreFFI.h, e.g. $(head -n 3 <<<"$missing" | tr '\n' ' ')"
    # Members built by rustup's std may target an older iOS; none may be newer
    # than the app's floor, or linking a 15.1 app warns and may not run.
    minos="$(otool -arch "$arch" -l "$lib" | awk '$1 == "minos" { print $2 }' | sort -uV | tail -n 1)"
    [ -n "$minos" ] || fail "$lib ($arch) has no LC_BUILD_VERSION minos"
    [ "$(printf '%s\n%s\n' "$minos" "$IPHONEOS_DEPLOYMENT_TARGET" | sort -V | tail -n 1)" = "$IPHONEOS_DEPLOYMENT_TARGET" ] ||
      fail "$lib ($arch) has objects built for iOS $minos, newer than $IPHONEOS_DEPLOYMENT_TARGET"
    echo "ok   $lib ($arch): $(wc -l <"$wanted") functions of S3bguCoreFFI.h defined, newest minos $minos"
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
du -sh "$out"
echo "build-ios: done ($out)"
