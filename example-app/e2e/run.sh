#!/usr/bin/env bash
# The example app, built from the packed tarball, uploading on an Android
# emulator or an iOS simulator against the reference backend and its s3s-fs
# store on this machine (tools/testkit's e2e-harness: `s3bgu serve` plus a
# count of the part PUTs and a way to slow them). Three scenarios, each a
# fresh random file uploaded through the app's UI (Maestro flows beside this
# script), then checked byte for byte against the object in the store:
#   foreground  the app stays open;
#   background  the app goes to the background once a part is stored and
#               the upload must finish there (the runner waits for the
#               backend's complete call before bringing the app back);
#   killed      the app's process is killed once two parts are stored
#               (`adb shell kill -9` as root / `xcrun simctl terminate`), relaunched,
#               and must finish with no stored part sent again.
#
#   example-app/e2e/run.sh android APK      (emulator from adb / ANDROID_SERIAL)
#   example-app/e2e/run.sh ios APP_DIR      (booted simulator, or IOS_UDID)
#
# Env: E2E_HARNESS (the e2e-harness binary; default target/release/),
# MAESTRO (default: maestro on PATH), E2E_SIZE_MB (default 24; parts are
# 5 MiB), E2E_SCENARIOS (default "foreground background killed").
# Prints one result line per scenario and `N passed, N failed`.
# Written from the tools' documentation (Maestro, adb, simctl); it has never run.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

platform="${1:-}"
app="${2:-}"
case "$platform" in
  android) app_id=com.s3bguploaderexample ;;
  ios) app_id=org.reactjs.native.example.S3BgUploaderExample ;;
  *) echo "usage: $0 android APK | ios APP_DIR" >&2; exit 2 ;;
esac
[ -e "$app" ] || { echo "e2e: no app at '$app'" >&2; exit 2; }
harness_bin="${E2E_HARNESS:-${CARGO_TARGET_DIR:-$root/target}/release/e2e-harness}"
[ -x "$harness_bin" ] || { echo "e2e: no e2e-harness at $harness_bin (cargo build --release -p s3bgu-testkit --bin e2e-harness)" >&2; exit 2; }
maestro="${MAESTRO:-maestro}"
size_mb="${E2E_SIZE_MB:-24}"
scenarios="${E2E_SCENARIOS:-foreground background killed}"

work="$(mktemp -d)"
harness_pid=""
cleanup() {
  exec 3>&- 2>/dev/null || true
  if [ -n "$harness_pid" ]; then kill "$harness_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
log() { printf '[e2e %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# -- the backend and store ---------------------------------------------------------
mkfifo "$work/harness.in"
"$harness_bin" --store "$work/store" <"$work/harness.in" >"$work/harness.out" 2>"$work/harness.err" &
harness_pid=$!
exec 3>"$work/harness.in"
answered=0
answer=""
# One command, one answer line (after the three lines the harness starts
# with), left in $answer: not a $(subshell), which would lose the count.
ask() {
  local want _
  printf '%s\n' "$1" >&3
  answered=$((answered + 1))
  want=$((answered + 3))
  for _ in $(seq 1 100); do
    if [ "$(wc -l <"$work/harness.out")" -ge "$want" ]; then
      answer="$(sed -n "${want}p" "$work/harness.out")"
      return
    fi
    sleep 0.1
  done
  echo "e2e: the harness did not answer '$1'" >&2
  cat "$work/harness.err" >&2
  exit 1
}
for _ in $(seq 1 100); do
  [ "$(wc -l <"$work/harness.out")" -ge 3 ] && break
  sleep 0.1
done
backend_url="$(awk '$1 == "backend" { print $2 }' "$work/harness.out")"
store_url="$(awk '$1 == "store-url" { print $2 }' "$work/harness.out")"
store_dir="$(awk '$1 == "store" { print $2 }' "$work/harness.out")"
if [ -z "$backend_url" ] || [ -z "$store_url" ]; then
  cat "$work/harness.err" >&2
  echo "e2e: the harness did not start" >&2
  exit 1
fi
log "backend $backend_url, store $store_url"
port_of() { printf '%s\n' "$1" | sed -e 's#^[a-z]*://[^:/]*:##' -e 's#/.*##'; }

# -- the device ----------------------------------------------------------------------
if [ "$platform" = android ]; then
  # The part URLs are signed for the store's loopback address, so the app
  # must reach exactly that host and port: adb reverse maps the emulator's
  # localhost ports to this machine's (10.0.2.2 would change the signed host).
  # Root first (restarting adbd drops reverse mappings): `am kill` spares a
  # process that runs a job or a foreground service, as this app does while
  # it uploads, so the kill below is a signal, which needs root (emulator
  # images without Google Play allow it).
  adb root >/dev/null && adb wait-for-device
  for url in "$backend_url" "$store_url"; do
    adb reverse "tcp:$(port_of "$url")" "tcp:$(port_of "$url")"
  done
  adb install -r -g "$app" >/dev/null
  files_dir="/sdcard/Android/data/$app_id/files"
  place_file() { adb shell mkdir -p "$files_dir" && adb push "$1" "$files_dir/$2" >/dev/null && echo "$files_dir/$2"; }
  to_background() { adb shell input keyevent KEYCODE_HOME; }
  # SIGKILL, as the low-memory killer ends a process: no callback runs.
  kill_app() {
    local pid
    pid="$(app_pid)"
    [ -n "$pid" ] && adb shell kill -9 "$pid"
  }
  app_pid() { adb shell pidof "$app_id" 2>/dev/null | tr -d '\r' || true; }
else
  udid="${IOS_UDID:-booted}"
  xcrun simctl install "$udid" "$app"
  # The simulator shares this machine's loopback: the URLs work as they are.
  place_file() {
    local container
    container="$(xcrun simctl get_app_container "$udid" "$app_id" data)"
    mkdir -p "$container/Documents"
    cp "$1" "$container/Documents/$2"
    echo "$container/Documents/$2"
  }
  to_background() { xcrun simctl launch "$udid" com.apple.Preferences >/dev/null; }
  kill_app() { xcrun simctl terminate "$udid" "$app_id"; }
  # launchctl's list: "PID STATUS LABEL", the app's label ending in its bundle id.
  app_pid() { xcrun simctl spawn "$udid" launchctl list 2>/dev/null | awk -v id="$app_id" 'index($3, id) && $1 != "-" { print $1 }' || true; }
fi

flow() {
  local file=$1
  shift
  "$maestro" test "$@" "$here/$file" >"$work/maestro.log" 2>&1 || { cat "$work/maestro.log"; return 1; }
}

# Waits until the harness answers `cmd` with at least `n`, up to `secs`.
wait_for() {
  local cmd=$1 n=$2 secs=$3 start=$SECONDS
  while ask "$cmd" && [ "$answer" -lt "$n" ]; do
    [ $((SECONDS - start)) -lt "$secs" ] || return 1
    sleep 1
  done
}

# The object the store holds for this upload: a file under the store with
# exactly the bytes sent.
stored_copy_matches() {
  local src=$1 size f
  size="$(wc -c <"$src" | tr -d ' ')"
  while IFS= read -r f; do
    if cmp -s "$src" "$f"; then return 0; fi
  done < <(find "$store_dir" -type f -size "${size}c")
  return 1
}

passed=0
failed=0
scenario() {
  local name=$1 file="e2e-$1.bin" src path completes_before
  src="$work/$file"
  head -c "$((size_mb * 1024 * 1024))" /dev/urandom >"$src"
  path="$(place_file "$src" "$file")"
  ask completes
  completes_before=$answer
  local puts_before
  ask ok-part-puts
  puts_before=$answer
  # Slow parts (background, killed): the upload is surely under way when
  # the app leaves the foreground, and still has parts left afterwards.
  if [ "$name" = foreground ]; then ask "delay-puts 0"; else ask "delay-puts 1500"; fi
  local env=(-e "APP_ID=$app_id" -e "BACKEND_URL=$backend_url" -e "TRANSFER_ID=e2e-$name" -e "FILE_NAME=$file")
  flow start-upload.yaml "${env[@]}" -e "FILE_PATH=$path" || return 1
  case "$name" in
    background)
      wait_for ok-part-puts "$((puts_before + 1))" 120 || { log "no part stored within 2 min"; return 1; }
      to_background
      ask ok-part-puts
      log "app in the background after $((answer - puts_before)) parts"
      # Finishes without the app in front: the backend's complete call comes in.
      wait_for completes "$((completes_before + 1))" 600 || { log "the upload did not complete in the background within 10 min"; return 1; }
      ;;
    killed)
      wait_for ok-part-puts "$((puts_before + 2))" 120 || { log "two parts not stored within 2 min"; return 1; }
      local pid
      pid="$(app_pid)"
      [ -n "$pid" ] || { log "no process of the app to kill"; return 1; }
      # Parts first stored after this mark were on their way at the kill:
      # sending them again is right; parts stored before it must not be.
      ask mark-kill
      kill_app
      sleep 2
      # The system may start a new process for the app's scheduled work; the
      # one that was uploading must be gone.
      case " $(app_pid) " in *" $pid "*) log "the app's process $pid survived the kill"; return 1 ;; esac
      ask ok-part-puts
      log "app process killed after $((answer - puts_before)) parts"
      ask "delay-puts 0"
      ;;
  esac
  flow wait-completed.yaml "${env[@]}" -e TIMEOUT_MS=600000 || return 1
  wait_for completes "$((completes_before + 1))" 60 || { log "the app says COMPLETED, the backend got no complete call"; return 1; }
  stored_copy_matches "$src" || { log "no object in the store equals the file sent"; return 1; }
  ask parts-stored-twice
  [ "$answer" = 0 ] || { log "$answer stored parts were sent again"; return 1; }
  ask ok-part-puts
  log "$name: ${size_mb} MiB stored byte for byte, $((answer - puts_before)) parts stored, none twice"
}

for name in $scenarios; do
  log "scenario $name ($platform)"
  if scenario "$name"; then
    echo "ok   $platform $name"
    passed=$((passed + 1))
  else
    echo "FAIL $platform $name"
    failed=$((failed + 1))
  fi
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
