#!/usr/bin/env bash
# The Android module on the JVM: compiles android/src/main/java (Kotlin, the
# uniffi bindings) and the codegen Java spec against android-all 15 (API 35)
# and react-android 0.87.1, then runs the Robolectric suite (android/test/src)
# against the real engine (desktop libs3bgu_core.so through JNA) and
# `s3bgu serve` / `https-harness` on loopback. No Gradle, SDK or emulator.
# Every test runs at each API level of resources/robolectric.properties
# (24, 28, 31, 33, 35); S3BGU_ROBO_SDKS=35 (or "33 35") runs a subset, and
# S3BGU_ROBO_TEST (Surefire's -Dtest, e.g. ModuleTest#aDamaged*) some tests.
#
# Downloads once into ~/.cache/s3bgu-ci/android (codegen, extracted AAR
# classes, one Robolectric instrumented android-all per level) and
# ~/.cache/s3bgu-ci/m2 (Maven's local repository); later runs are offline.
# Honours CARGO_TARGET_DIR. Prints the results per level, then
# "N passed, N failed" last (all levels); exits non-zero on failure.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
cache="${S3BGU_ANDROID_CACHE:-$HOME/.cache/s3bgu-ci/android}"
m2="${S3BGU_M2:-$HOME/.cache/s3bgu-ci/m2}"
REACT=0.87.1
CODEGEN=0.87.1
ANDROID_ALL=15-robolectric-13954326
started=$SECONDS

# The levels to run: the sdk= line of robolectric.properties, or a subset of it.
all_sdks="$(sed -n 's/^sdk=//p' "$here/resources/robolectric.properties" | tr ',' ' ')"
sdks="$(tr ', ' '  ' <<<"${S3BGU_ROBO_SDKS:-$all_sdks}" | xargs)"
for s in $sdks; do
  case " $(xargs <<<"$all_sdks") " in
    *" $s "*) ;;
    *) echo "S3BGU_ROBO_SDKS: API $s is not in robolectric.properties ($all_sdks)"; echo "0 passed, 1 failed"; exit 1 ;;
  esac
done
[ -n "$sdks" ] || { echo "no API level to run"; echo "0 passed, 1 failed"; exit 1; }
# Robolectric 4.17's jar for each level (DefaultSdkProvider: android version,
# robolectric build, and the pre-instrumentation suffix i7).
instrumented_version() {
  case "$1" in
    24) echo 7.0.0_r1-robolectric-r1-i7 ;;
    25) echo 7.1.0_r7-robolectric-r1-i7 ;;
    26) echo 8.0.0_r4-robolectric-r1-i7 ;;
    27) echo 8.1.0-robolectric-4611349-i7 ;;
    28) echo 9-robolectric-4913185-2-i7 ;;
    29) echo 10-robolectric-5803371-i7 ;;
    30) echo 11-robolectric-6757853-i7 ;;
    31) echo 12-robolectric-7732740-i7 ;;
    32) echo 12.1-robolectric-8229987-i7 ;;
    33) echo 13-robolectric-9030017-i7 ;;
    34) echo 14-robolectric-10818077-i7 ;;
    35) echo 15-robolectric-13954326-i7 ;;
    *) return 1 ;;
  esac
}

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
need_apt=()
command -v java >/dev/null 2>&1 || need_apt+=(default-jdk-headless)
command -v mvn >/dev/null 2>&1 || need_apt+=(maven)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
command -v unzip >/dev/null 2>&1 || need_apt+=(unzip)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing ${need_apt[*]}"
  as_root apt-get update -qq
  as_root apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

mkdir -p "$cache" "$m2"
ready="$cache/.ready-1"
offline=()
# Offline once a run has completed with this cache (plugins included).
[ -f "$ready" ] && [ -d "$m2/org/jetbrains/kotlin/kotlin-maven-plugin" ] && offline=(-o)

# shellcheck source-path=SCRIPTDIR source=maven-artifact.sh
. "$here/maven-artifact.sh"

# An AAR's classes.jar, installed as a plain jar s3bgu.ci:<name>:<version>.
install_aar_classes() { # coordinates name version
  local name="$2" version="$3"
  [ -f "$m2/s3bgu/ci/$name/$version/$name-$version.jar" ] && return 0
  local aar dir
  aar="$(artifact "$1")"
  dir="$(mktemp -d)"
  unzip -q -o "$aar" classes.jar -d "$dir"
  mvn -q -B -Dmaven.repo.local="$m2" install:install-file -Dfile="$dir/classes.jar" \
    -DgroupId=s3bgu.ci -DartifactId="$name" -Dversion="$version" -Dpackaging=jar -DgeneratePom=true
  rm -rf "$dir"
}
install_aar_classes "com.facebook.react:react-android:$REACT:aar:release" react-android-classes "$REACT"
install_aar_classes com.facebook.fbjni:fbjni:0.7.0:aar fbjni-classes 0.7.0
install_aar_classes com.facebook.soloader:soloader:0.12.1:aar soloader-classes 0.12.1
install_aar_classes androidx.test:monitor:1.8.0:aar androidx-test-monitor-classes 1.8.0
install_aar_classes androidx.test.espresso:espresso-idling-resource:3.7.0:aar espresso-idling-resource-classes 3.7.0

# Robolectric's framework jars, one per level, read offline from this folder
# (a hard link to the copy in $m2 where the file system allows).
robo="$cache/robolectric"
mkdir -p "$robo"
for s in $sdks; do
  v="$(instrumented_version "$s")" || { echo "no android-all jar known for API $s"; echo "0 passed, 1 failed"; exit 1; }
  if [ ! -f "$robo/android-all-instrumented-$v.jar" ]; then
    jar="$(artifact "org.robolectric:android-all-instrumented:$v")"
    ln -f "$jar" "$robo/" 2>/dev/null || cp "$jar" "$robo/"
  fi
done

# React Native codegen for the spec (Java only is kept).
codegen_home="$cache/codegen-$CODEGEN"
cg="$codegen_home/node_modules/@react-native/codegen/lib/cli"
if [ ! -f "$cg/combine/combine-js-to-schema-cli.js" ]; then
  echo "fetching @react-native/codegen $CODEGEN from npm"
  mkdir -p "$codegen_home"
  (cd "$codegen_home" && npm install --silent --no-audit --no-fund --prefix . "@react-native/codegen@$CODEGEN" >/dev/null)
fi
work="$(mktemp -d)"
# S3BGU_ANDROID_KEEP=1 keeps the build and the reports (printed at the end) for a look.
if [ -n "${S3BGU_ANDROID_KEEP:-}" ]; then trap 'echo "kept: $work"' EXIT; else trap 'rm -rf "$work"' EXIT; fi
mkdir -p "$work/codegen" "$work/gen"
node "$cg/combine/combine-js-to-schema-cli.js" "$work/codegen/schema.json" \
  "$root/js/src/NativeS3BgUploader.ts" -p android -l S3BgUploaderSpec
node "$cg/generators/generate-all.js" "$work/codegen/schema.json" S3BgUploaderSpec "$work/gen" com.s3bguploader >/dev/null
spec="$work/gen/java/com/s3bguploader/NativeS3BgUploaderSpec.java"
[ -f "$spec" ] || { echo "codegen produced no Java spec"; echo "0 passed, 1 failed"; exit 1; }
mkdir -p "$work/codegen-java/java/com/s3bguploader"
cp "$spec" "$work/codegen-java/java/com/s3bguploader/"

echo "building the engine and s3bgu (debug)"
(cd "$root" && cargo build --locked -q --workspace --all-targets)
case "$(uname -s)" in
  Darwin) lib="$target/debug/libs3bgu_core.dylib" ;;
  *) lib="$target/debug/libs3bgu_core.so" ;;
esac

echo "compiling the module (Kotlin + codegen Java spec, android-all $ANDROID_ALL, react-android $REACT)"
# Per run (two runs on one machine must not delete each other's classes).
build="$work/build"
mvn_args=(-B "${offline[@]}" -Dmaven.repo.local="$m2" -f "$here/pom.xml"
  -Dkotlin.compiler.execution.strategy=in-process
  -Ds3bgu.codegen.dir="$work/codegen-java"
  -Ds3bgu.build.dir="$build"
  -Ds3bgu.robolectric.dir="$robo"
  -Ds3bgu.lib.dir="$(dirname "$lib")"
  -Ds3bgu.cli="$target/debug/s3bgu"
  -Ds3bgu.httpsHarness="$target/debug/https-harness"
  -Ds3bgu.repo.root="$root")
set +e
mvn "${mvn_args[@]}" test-compile >"$work/mvn.log" 2>&1
rc=$?
set -e
grep -E '^\[(ERROR|WARNING)\] .*\.(kt|java)|BUILD' "$work/mvn.log" | grep -v '^\[WARNING\] .*warning: ' | tail -n 60 || true
if [ $rc -ne 0 ]; then
  tail -n 80 "$work/mvn.log"
  echo "android step took $((SECONDS - started)) s"
  echo "0 passed, 1 failed"
  exit 1
fi

# One JVM per API level: the engine's native library, and the callbacks the
# module registers with it (platform trust, file opener), live once per
# process while Robolectric loads the module's classes once per level. In one
# shared JVM the certificate checks failed at four levels of five and one
# test class ran for 8 minutes.
for s in $sdks; do
  echo "running Robolectric at API $s"
  level_started=$SECONDS
  set +e
  mvn "${mvn_args[@]}" -Ds3bgu.robolectric.sdks="$s" -Ds3bgu.reports.dir="$build/surefire-reports/api-$s" \
    ${S3BGU_ROBO_TEST:+"-Dtest=$S3BGU_ROBO_TEST"} surefire:test >"$work/mvn-$s.log" 2>&1
  level_rc=$?
  set -e
  grep -E 'Tests run:|FAIL|BUILD' "$work/mvn-$s.log" | tail -n 30 || true
  if [ $level_rc -ne 0 ] && ! ls "$build/surefire-reports/api-$s"/TEST-*.xml >/dev/null 2>&1; then
    tail -n 80 "$work/mvn-$s.log"
  fi
  # Failing tests' output, for the log.
  for f in "$build/surefire-reports/api-$s"/*-output.txt; do
    [ -f "$f" ] || continue
    if grep -q "FAIL\|Exception" "$f"; then echo "--- API $s: $(basename "$f")"; tail -n 40 "$f"; fi
  done
  echo "API $s took $((SECONDS - level_started)) s"
  [ $level_rc -eq 0 ] || rc=$level_rc
done

passed=0
failed=0
for x in "$build"/surefire-reports/api-*/TEST-*.xml; do
  [ -f "$x" ] || continue
  head_tag="$(grep -o '<testsuite [^>]*' "$x" | head -n 1)"
  attr() { grep -o " $1=\"[0-9]*\"" <<<"$head_tag" | grep -o '[0-9][0-9]*' || echo 0; }
  t=$(attr tests); f=$(attr failures); e=$(attr errors); s=$(attr skipped)
  passed=$((passed + t - f - e - s))
  failed=$((failed + f + e + s))
done
# Per level, with each failed test named (Robolectric's test names end in
# [level]; plain JUnit classes run in every level's JVM too).
for s in $sdks; do
  ls "$build/surefire-reports/api-$s"/TEST-*.xml >/dev/null 2>&1 || { echo "API $s: no test report"; continue; }
  cat "$build/surefire-reports/api-$s"/TEST-*.xml | awk -v level="$s" 'BEGIN { RS = "<testcase " }
    NR > 1 {
      head = " " substr($0, 1, index($0, ">"))
      n = head; sub(/.* name="/, "", n); sub(/".*/, "", n)
      c = head; sub(/.* classname="/, "", c); sub(/".*/, "", c); sub(/.*\./, "", c)
      body = $0; e = index(body, "</testcase>"); if (e) body = substr(body, 1, e)
      if (head !~ /\/>$/ && body ~ /<(failure|error|skipped)[ >\/]/) {
        # The reason: the message and type of the failure, on one line.
        why = body; sub(/.*<(failure|error|skipped)/, "", why); sub(/>.*/, "", why)
        m = why; if (!sub(/.* message="/, "", m)) m = ""; sub(/".*/, "", m)
        t = why; if (!sub(/.* type="/, "", t)) t = ""; sub(/".*/, "", t)
        failed++; names = names "\n  failed at API " level ": " c "." n "\n    " t ": " substr(m, 1, 300)
      } else passed++
    }
    END { printf "API %s: %d passed, %d failed%s\n", level, passed, failed, names }'
done
[ $rc -eq 0 ] && touch "$ready"
[ $rc -ne 0 ] && [ $failed -eq 0 ] && failed=1
echo "android step took $((SECONDS - started)) s"
echo "$passed passed, $failed failed"
[ $rc -eq 0 ] && [ $failed -eq 0 ]
