#!/usr/bin/env bash
# Benchmarks: the engine against aws-cli, parallel curl and xxhsum, in one
# run, on one loopback store. Prints a markdown table on stdout (progress on
# stderr). Figures, not tests: nothing here fails on speed.
#
#   scripts/bench.sh            full run (1 GiB upload, 2 GiB hash, 2,000 small
#                               files, 1,000 queued uploads; 3 reps each)
#   scripts/bench.sh --smoke    tiny sizes, one rep, debug binaries: checks the
#                               harness still works (scripts/test.sh runs it)
#   scripts/bench.sh --reps 5   more repetitions
#   scripts/bench.sh --only throughput,https,hashing,small,queue,backlog,size
#
# Installs its peers where only it looks: awscli (pinned, bench/requirements.txt)
# in a venv under ${S3BGU_BENCH_CACHE:-~/.cache/s3bgu-bench}; xxhsum from
# Debian's xxhash package if it is missing. Test data and the store live in
# ${S3BGU_BENCH_DIR:-<target dir>/bench} (about 5 GiB for a full run).
set -euo pipefail
cd "$(dirname "$0")/.."

smoke=0
for arg in "$@"; do
  [ "$arg" = "--smoke" ] && smoke=1
done

note() { echo "bench: $*" >&2; }

cache="${S3BGU_BENCH_CACHE:-$HOME/.cache/s3bgu-bench}"
target="${CARGO_TARGET_DIR:-$PWD/target}"
work="${S3BGU_BENCH_DIR:-$target/bench}"
mkdir -p "$cache" "$work"

# Peers. ------------------------------------------------------------------
need_apt=()
command -v xxhsum >/dev/null || need_apt+=(xxhash)
command -v curl >/dev/null || need_apt+=(curl)
command -v strip >/dev/null || need_apt+=(binutils)
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  note "installing ${need_apt[*]} from Debian"
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

venv="$cache/venv"
stamp="$venv/.requirements"
if ! cmp -s bench/requirements.txt "$stamp" 2>/dev/null; then
  note "installing awscli into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r bench/requirements.txt
  cp bench/requirements.txt "$stamp"
fi

# Binaries. ----------------------------------------------------------------
# The HTTPS harness is built on its own, so that its dependencies' features
# do not change the engine's build.
mobile=()
if [ "$smoke" = 1 ]; then
  # The debug build scripts/test.sh already made: the smoke checks the
  # harness, not the speed.
  profile=debug
  cargo build --quiet -p s3bgu -p s3bgu-core
  cargo build --quiet -p s3bgu-testkit --bin https-harness
else
  profile=release
  note "building the release binaries"
  cargo build --quiet --release -p s3bgu -p s3bgu-core
  cargo build --quiet --release -p s3bgu-testkit --bin https-harness
  note "building the mobile-profile library"
  # As scripts/build-android.sh builds it for a phone: the cdylib alone (so
  # the profile's LTO applies), its relocations packed (RELR here, where the
  # host's glibc reads it; Android's own packed format on a phone), C code
  # without unwind tables, and without the bundled root certificates
  # (phones use their own store). Unstripped, so bench/size_breakdown.py can
  # read its symbols; the table strips a copy.
  CFLAGS="${CFLAGS:+$CFLAGS }-fno-asynchronous-unwind-tables -fno-unwind-tables" \
    CARGO_PROFILE_MOBILE_STRIP=false cargo rustc --quiet --profile mobile -p s3bgu-core \
    --no-default-features --lib --crate-type cdylib -- -C link-arg=-Wl,-z,pack-relative-relocs
  mobile=(--lib-mobile "$target/mobile/libs3bgu_core.so")
fi

exec python3 bench/bench.py \
  --work "$work" \
  --bin "$target/$profile/s3bgu" \
  --lib "$target/$profile/libs3bgu_core.so" \
  --https-harness "$target/$profile/https-harness" \
  "${mobile[@]}" \
  --aws "$venv/bin/aws" \
  "$@"
