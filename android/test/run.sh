#!/usr/bin/env bash
# The Android module on the JVM: compiles android/src/main/java (Kotlin, the
# uniffi bindings) and the codegen Java spec against android-all 15 (API 35)
# and react-android 0.87.1, then runs the Robolectric suite (android/test/src)
# against the real engine (desktop libs3bgu_core.so through JNA) and
# `s3bgu serve` / `https-harness` on loopback. No Gradle, SDK or emulator.
#
# Downloads once into ~/.cache/s3bgu-ci/android (codegen, extracted AAR
# classes, Robolectric's instrumented android-all) and ~/.cache/s3bgu-ci/m2
# (Maven's local repository); later runs are offline. Honours
# CARGO_TARGET_DIR. Prints "N passed, N failed" last; exits non-zero on failure.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
cache="${S3BGU_ANDROID_CACHE:-$HOME/.cache/s3bgu-ci/android}"
m2="${S3BGU_M2:-$HOME/.cache/s3bgu-ci/m2}"
REACT=0.87.1
CODEGEN=0.87.1
ANDROID_ALL=15-robolectric-13954326
INSTRUMENTED=$ANDROID_ALL-i7
started=$SECONDS

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

# Artifacts fetched as files (not resolved transitively: react-android's own
# dependency tree is not all on Maven Central).
artifact() { # group:artifact:version[:type[:classifier]] -> path in $m2
  local g a v t c
  IFS=: read -r g a v t c <<<"$1"
  t="${t:-jar}"
  local f="$m2/${g//.//}/$a/$v/$a-$v${c:+-$c}.$t"
  if [ ! -f "$f" ]; then
    echo "fetching $1" >&2
    mvn -q -B -Dmaven.repo.local="$m2" dependency:get -Dtransitive=false -Dartifact="$1" >&2
  fi
  echo "$f"
}

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

# Robolectric's framework jar, read offline from this folder.
robo="$cache/robolectric"
mkdir -p "$robo"
if [ ! -f "$robo/android-all-instrumented-$INSTRUMENTED.jar" ]; then
  cp "$(artifact "org.robolectric:android-all-instrumented:$INSTRUMENTED")" "$robo/"
fi

# React Native codegen for the spec (Java only is kept).
codegen_home="$cache/codegen-$CODEGEN"
cg="$codegen_home/node_modules/@react-native/codegen/lib/cli"
if [ ! -f "$cg/combine/combine-js-to-schema-cli.js" ]; then
  echo "fetching @react-native/codegen $CODEGEN from npm"
  mkdir -p "$codegen_home"
  (cd "$codegen_home" && npm install --silent --no-audit --no-fund --prefix . "@react-native/codegen@$CODEGEN" >/dev/null)
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
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

echo "compiling the module (Kotlin + codegen Java spec, android-all $ANDROID_ALL, react-android $REACT) and running Robolectric"
# Per run (two runs on one machine must not delete each other's classes).
build="$work/build"
set +e
mvn -B "${offline[@]}" -Dmaven.repo.local="$m2" -f "$here/pom.xml" \
  -Dkotlin.compiler.execution.strategy=in-process \
  -Ds3bgu.codegen.dir="$work/codegen-java" \
  -Ds3bgu.build.dir="$build" \
  -Ds3bgu.robolectric.dir="$robo" \
  -Ds3bgu.lib.dir="$(dirname "$lib")" \
  -Ds3bgu.cli="$target/debug/s3bgu" \
  -Ds3bgu.httpsHarness="$target/debug/https-harness" \
  -Ds3bgu.repo.root="$root" \
  test >"$work/mvn.log" 2>&1
rc=$?
set -e
grep -E '^\[(ERROR|WARNING)\] .*\.(kt|java)|Tests run:|FAIL|BUILD' "$work/mvn.log" | grep -v '^\[WARNING\] .*warning: ' | tail -n 60 || true
if [ $rc -ne 0 ] && ! ls "$build"/surefire-reports/TEST-*.xml >/dev/null 2>&1; then
  tail -n 80 "$work/mvn.log"
fi
# Failing tests' output, for the log.
for f in "$build"/surefire-reports/*-output.txt; do
  [ -f "$f" ] || continue
  if grep -q "FAIL\|Exception" "$f"; then echo "--- $(basename "$f")"; tail -n 40 "$f"; fi
done

passed=0
failed=0
for x in "$build"/surefire-reports/TEST-*.xml; do
  [ -f "$x" ] || continue
  head_tag="$(grep -o '<testsuite [^>]*' "$x" | head -n 1)"
  attr() { grep -o " $1=\"[0-9]*\"" <<<"$head_tag" | grep -o '[0-9][0-9]*' || echo 0; }
  t=$(attr tests); f=$(attr failures); e=$(attr errors); s=$(attr skipped)
  passed=$((passed + t - f - e - s))
  failed=$((failed + f + e + s))
done
[ $rc -eq 0 ] && touch "$ready"
[ $rc -ne 0 ] && [ $failed -eq 0 ] && failed=1
echo "android step took $((SECONDS - started)) s"
echo "$passed passed, $failed failed"
[ $rc -eq 0 ] && [ $failed -eq 0 ]
