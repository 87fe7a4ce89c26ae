#!/usr/bin/env bash
# Builds the engine for Android and places it where the library's Gradle
# build packs it: android/src/main/jniLibs/<abi>/libs3bgu_core.so.
#
#   scripts/build-android.sh [ABI...]      default: all four
#
# One ABI per run lets CI build them in parallel jobs (each is a fat-LTO
# link of its own); the bindings check runs on whichever ABI is built.
#
# Needs: rustup, the Android NDK (ANDROID_NDK_HOME, or ANDROID_NDK_ROOT, or
# ANDROID_HOME/ndk/<version>; r27 or newer), network for the first run
# (rustup targets, cargo-ndk). Honours CARGO_TARGET_DIR.
#
# What it guarantees, or it fails:
#   - four ABIs (arm64-v8a, armeabi-v7a, x86_64, x86), API 24 (the library's
#     minSdk), the `mobile` profile (size-tuned, see Cargo.toml);
#   - every LOAD segment aligned to 16 KB (Android 15+ devices with 16 KB
#     pages; Google Play requires it); relocations packed (API 23+ format);
#   - every uniffi symbol the committed Kotlin bindings call is exported;
#   - the Kotlin bindings generated from the built library equal the
#     committed ones (android/src/main/java/com/s3bguploader/core);
#   - each stripped library is at most 3.5 MiB (check-android-libs.sh); the
#     unstripped ones stay in android/build/unstripped/<abi> (not packed)
#     for symbolicating crashes (ndk-stack).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

CARGO_NDK_VERSION=4.1.2
API_LEVEL=24
ALL_ABIS=(arm64-v8a armeabi-v7a x86_64 x86)
ALL_TRIPLES=(aarch64-linux-android armv7-linux-androideabi x86_64-linux-android i686-linux-android)
out="$root/android/src/main/jniLibs"
unstripped="$root/android/build/unstripped"
target_dir="${CARGO_TARGET_DIR:-$root/target}"

fail() { echo "build-android: $*" >&2; exit 1; }
step() { printf '\n== %s\n' "$*"; }

ABIS=()
TRIPLES=()
[ $# -gt 0 ] || set -- "${ALL_ABIS[@]}"
for abi in "$@"; do
  found=""
  for i in "${!ALL_ABIS[@]}"; do
    if [ "${ALL_ABIS[$i]}" = "$abi" ]; then
      ABIS+=("$abi")
      TRIPLES+=("${ALL_TRIPLES[$i]}")
      found=1
    fi
  done
  [ -n "$found" ] || fail "unknown ABI '$abi' (known: ${ALL_ABIS[*]})"
done

# -- tools ----------------------------------------------------------------------
ndk="${ANDROID_NDK_HOME:-${ANDROID_NDK_ROOT:-}}"
if [ -z "$ndk" ] && [ -n "${ANDROID_HOME:-}" ] && [ -d "$ANDROID_HOME/ndk" ]; then
  # The newest side-by-side NDK, as cargo-ndk would pick it.
  ndk="$(find "$ANDROID_HOME/ndk" -mindepth 1 -maxdepth 1 -type d | sort -V | tail -n 1)"
fi
if [ -z "$ndk" ] || [ ! -d "$ndk/toolchains/llvm/prebuilt" ]; then
  fail "no Android NDK found: set ANDROID_NDK_HOME to an NDK (r27 or newer)"
fi
export ANDROID_NDK_HOME="$ndk"
# The NDK ships one prebuilt host toolchain (darwin-x86_64 also on Apple silicon).
llvm_bin="$(find "$ndk/toolchains/llvm/prebuilt" -mindepth 2 -maxdepth 2 -type d -name bin | head -n 1)"
if [ ! -x "$llvm_bin/llvm-readelf" ] || [ ! -x "$llvm_bin/llvm-strip" ]; then
  fail "no llvm-readelf/llvm-strip in $ndk/toolchains/llvm/prebuilt/*/bin"
fi
# r27 is the first NDK whose toolchain supports 16 KB pages by default and
# that cargo-ndk 4 documents; the runner images ship r27 as their default.
ndk_revision="$(awk -F' *= *' '$1 == "Pkg.Revision" { print $2 }' "$ndk/source.properties" 2>/dev/null || true)"
[ "${ndk_revision%%.*}" -ge 27 ] 2>/dev/null || fail "NDK at $ndk is ${ndk_revision:-of unknown version}: r27 or newer is needed"
echo "NDK: $ndk ($ndk_revision)"

if [ "$(cargo ndk --version 2>/dev/null || true)" != "cargo-ndk $CARGO_NDK_VERSION" ]; then
  step "installing cargo-ndk $CARGO_NDK_VERSION"
  cargo install cargo-ndk --version "$CARGO_NDK_VERSION" --locked
fi
step "rust targets: ${TRIPLES[*]}"
rustup target add "${TRIPLES[@]}"

# -- build ------------------------------------------------------------------------
step "cargo ndk build (profile mobile, API $API_LEVEL, ${ABIS[*]})"
for abi in "${ABIS[@]}"; do rm -rf "${out:?}/$abi" "${unstripped:?}/$abi"; done
target_args=()
for abi in "${ABIS[@]}"; do target_args+=(-t "$abi"); done
# Linker flags go through RUSTFLAGS because cargo-ndk keeps the linker
# command line its own; with --target, cargo applies RUSTFLAGS to the Android
# artefacts only.
#   - 16 KB pages: every LOAD segment aligned to max-page-size.
#   - Packed relocations in Android's own format (bionic reads it from API 23;
#     RELR would need API 28); the host build packed as RELR loses 116 KiB.
#   - C code (SQLite, ring's C parts) without unwind tables: nothing unwinds
#     through it (C has no exceptions; rusqlite's callbacks catch Rust
#     panics before they reach SQLite's frames); about 95 KiB less. Through
#     TARGET_CFLAGS, which cargo-ndk passes on after its --target.
# `cargo rustc --crate-type cdylib` builds the shared library alone: with the
# crate's other types (rlib, staticlib) in the same rustc run the profile's
# LTO is not applied (rust-lang/cargo#9672): 0.85 MiB more on the host.
# The profile's strip is turned off here: uniffi-bindgen reads its metadata
# from the symbol table, so the bindings are checked against the unstripped
# library and the copies in jniLibs are stripped afterwards.
RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }-C link-arg=-Wl,-z,max-page-size=16384 -C link-arg=-Wl,--pack-dyn-relocs=android" \
  TARGET_CFLAGS="${TARGET_CFLAGS:+$TARGET_CFLAGS }-fno-asynchronous-unwind-tables -fno-unwind-tables" \
  CARGO_PROFILE_MOBILE_STRIP=false \
  cargo ndk "${target_args[@]}" --platform "$API_LEVEL" --output-dir "$out" \
  rustc --locked -p s3bgu-core --lib --crate-type cdylib --profile mobile

step "bindings: generated from the built library = committed"
"$root/scripts/check-bindings.sh" kotlin "$target_dir/${TRIPLES[0]}/mobile/libs3bgu_core.so"

step "strip (the dynamic symbol table stays: JNA looks the functions up there)"
libs=()
for abi in "${ABIS[@]}"; do
  lib="$out/$abi/libs3bgu_core.so"
  [ -s "$lib" ] || fail "cargo-ndk wrote no $lib"
  mkdir -p "$unstripped/$abi"
  cp "$lib" "$unstripped/$abi/libs3bgu_core.so"
  "$llvm_bin/llvm-strip" --strip-all "$lib"
  libs+=("$lib")
done

step "ELF checks: 16 KB alignment of every LOAD segment, exported uniffi symbols"
READELF="$llvm_bin/llvm-readelf" "$root/scripts/check-android-libs.sh" "${libs[@]}"

echo
for lib in "${libs[@]}"; do
  printf '%-60s %10s bytes\n' "${lib#"$root"/}" "$(wc -c <"$lib")"
done
echo "build-android: done"
