#!/usr/bin/env bash
# A phone's view of `s3bgu serve --listen 0.0.0.0:PORT`: a client in a network
# namespace of its own, joined to this one by a veth pair, so the server's
# loopback is not its loopback (as on a phone). It uploads through the address
# it reached the server at; the stored object must be byte-identical. A step
# of scripts/test.sh; needs root or sudo (ip netns).
# Usage: scripts/phone-reach.sh [path/to/s3bgu]  (default: builds it)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
work=$(mktemp -d)
if [ -n "${1:-}" ]; then
  cp "$1" "$work/s3bgu"
else
  cargo build -q -p s3bgu --locked
  # A copy: a later build elsewhere in the same target directory cannot
  # swap the binary under this run.
  cp "${CARGO_TARGET_DIR:-target}/debug/s3bgu" "$work/s3bgu"
fi
bin="$work/s3bgu"

# Interface names are at most 15 bytes; the pid keeps parallel runs apart.
ns="s3bgu-phone-$$"
host_if="s3bh$$"
phone_if="s3bp$$"
subnet="10.213.$(($$ % 250)).0"
host_ip="${subnet%.0}.1"
phone_ip="${subnet%.0}.2"
server=""

cleanup() {
  # The script's verdict, not the stopped server's.
  local status=$?
  if [ -n "$server" ]; then
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  $SUDO ip netns del "$ns" 2>/dev/null || true
  $SUDO ip link del "$host_if" 2>/dev/null || true
  $SUDO rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT

$SUDO ip netns add "$ns"
$SUDO ip link add "$host_if" type veth peer name "$phone_if"
$SUDO ip link set "$phone_if" netns "$ns"
$SUDO ip addr add "$host_ip/30" dev "$host_if"
$SUDO ip link set "$host_if" up
$SUDO ip netns exec "$ns" ip addr add "$phone_ip/30" dev "$phone_if"
$SUDO ip netns exec "$ns" ip link set "$phone_if" up
$SUDO ip netns exec "$ns" ip link set lo up

"$bin" serve --listen 0.0.0.0:0 --store "$work/store" >"$work/serve.out" 2>"$work/serve.err" &
server=$!
for _ in $(seq 1 100); do
  grep -q '^listening on ' "$work/serve.out" 2>/dev/null && break
  sleep 0.1
done
first=$(head -n 1 "$work/serve.out")
port="${first##*:}"
if [ -z "$port" ] || [ "$port" = "$first" ]; then
  echo "phone-reach: no address printed: $first" >&2
  cat "$work/serve.err" >&2
  exit 1
fi

passed=0
failed=0
verdict() {
  if [ "$1" = ok ]; then
    passed=$((passed + 1))
    echo "passed  $2"
  else
    failed=$((failed + 1))
    echo "FAILED  $2"
  fi
}

# The first line names an address other hosts can reach (not loopback).
case "$first" in
  "listening on http://127."*) verdict no "the first line advertises a non-loopback address ($first)" ;;
  *) verdict ok "the first line advertises a non-loopback address ($first)" ;;
esac
if grep -q "startUploadApi: 'http://.*:$port/startUpload'" "$work/serve.out"; then
  verdict ok "the setConfig lines name the startUpload route"
else
  verdict no "the setConfig lines name the startUpload route"
fi

# 5 MiB + 3 B of varied bytes: two parts at 5 MiB, one at the default 8 MiB.
head -c $((5 * 1024 * 1024 + 3)) /dev/urandom >"$work/phone.bin"
mkdir -p "$work/phone"
if $SUDO ip netns exec "$ns" "$bin" upload --backend "http://$host_ip:$port" \
  --db "$work/phone/queue.db" --max-attempts 2 --retry-max-delay 1s --json \
  "$work/phone.bin" >"$work/upload.json" 2>"$work/upload.err"; then
  verdict ok "an upload from the other namespace completes"
else
  verdict no "an upload from the other namespace completes: $(tail -n 1 "$work/upload.err")"
fi
key=$(sed -n 's/.*"key":"\([^"]*\)".*/\1/p' "$work/upload.json")
if [ -n "$key" ] && cmp -s "$work/phone.bin" "$work/store/uploads/$key"; then
  verdict ok "the stored object is byte-identical"
else
  verdict no "the stored object is byte-identical (key '${key}')"
fi

echo "phone-reach: $passed passed, $failed failed"
[ "$failed" = 0 ]
