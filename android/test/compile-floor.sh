#!/usr/bin/env bash
# The Android module compiled as the oldest app the package claims compiles
# it: React Native 0.76 (and Expo 52) pin Kotlin 1.9.25, so android/src/main
# (the module, the uniffi bindings) and the codegen 0.76 Java spec are
# compiled with kotlinc 1.9.25 against the classes of react-android 0.76.5
# and the kotlinx-coroutines version android/build.gradle declares. A
# dependency built by a newer Kotlin fails here as in such an app ("module
# was compiled with an incompatible version of Kotlin"). run.sh compiles the
# same sources with the newest Kotlin and runs the Robolectric suite.
#
# Downloads once into ~/.cache/s3bgu-ci (kotlin-compiler from npm, the
# codegen, react-android and coroutines from Maven Central). Prints
# "N passed, N failed" last; exits non-zero when the compile fails.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cache_root="${S3BGU_CI_CACHE:-$HOME/.cache/s3bgu-ci}"
m2="${S3BGU_M2:-$cache_root/m2}"
KOTLIN=1.9.25
REACT=0.76.5
CODEGEN=0.76.9
ANDROID_ALL=15-robolectric-13954326
JNA=5.19.1

coroutines="$(sed -n 's/.*kotlinx-coroutines-android:\([0-9][0-9.]*\)".*/\1/p' "$root/android/build.gradle")"
[ -n "$coroutines" ] || { echo "no kotlinx-coroutines-android version in android/build.gradle"; echo "0 passed, 1 failed"; exit 1; }

mkdir -p "$m2" "$cache_root/kotlin" "$cache_root/android"
# shellcheck source-path=SCRIPTDIR source=maven-artifact.sh
. "$here/maven-artifact.sh"

kotlin_home="$cache_root/kotlin/kotlin-compiler-$KOTLIN"
if [ ! -x "$kotlin_home/bin/kotlinc" ]; then
  echo "fetching kotlin-compiler $KOTLIN from npm"
  tgz="$cache_root/kotlin/kotlin-compiler-$KOTLIN.tgz"
  [ -f "$tgz" ] || (cd "$cache_root/kotlin" && npm pack --silent "kotlin-compiler@$KOTLIN" >/dev/null)
  rm -rf "$kotlin_home.tmp" && mkdir -p "$kotlin_home.tmp"
  tar -xzf "$tgz" -C "$kotlin_home.tmp"
  chmod +x "$kotlin_home.tmp/package/bin/"*
  rm -rf "$kotlin_home" && mv "$kotlin_home.tmp/package" "$kotlin_home" && rm -rf "$kotlin_home.tmp"
fi

codegen_home="$cache_root/android/codegen-$CODEGEN"
cg="$codegen_home/node_modules/@react-native/codegen/lib/cli"
if [ ! -f "$cg/combine/combine-js-to-schema-cli.js" ]; then
  echo "fetching @react-native/codegen $CODEGEN from npm"
  mkdir -p "$codegen_home"
  (cd "$codegen_home" && npm install --silent --no-audit --no-fund --prefix . "@react-native/codegen@$CODEGEN" >/dev/null)
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/codegen" "$work/gen" "$work/aar"
node "$cg/combine/combine-js-to-schema-cli.js" "$work/codegen/schema.json" \
  "$root/js/src/NativeS3BgUploader.ts" -p android -l S3BgUploaderSpec
node "$cg/generators/generate-all.js" "$work/codegen/schema.json" S3BgUploaderSpec "$work/gen" com.s3bguploader >/dev/null
spec="$work/gen/java/com/s3bguploader/NativeS3BgUploaderSpec.java"
[ -f "$spec" ] || { echo "codegen $CODEGEN produced no Java spec"; echo "0 passed, 1 failed"; exit 1; }

unzip -q -o "$(artifact "com.facebook.react:react-android:$REACT:aar:release")" classes.jar -d "$work/aar"
aar_classes() { # coordinates -> its classes.jar, extracted into $work
  local dir
  dir="$work/aar-$(basename "$1" | tr ':' '_')"
  mkdir -p "$dir"
  unzip -q -o "$(artifact "$1")" classes.jar -d "$dir"
  echo "$dir/classes.jar"
}
cp_parts=(
  "$(artifact "org.robolectric:android-all:$ANDROID_ALL")"
  "$work/aar/classes.jar"
  "$(aar_classes com.facebook.fbjni:fbjni:0.7.0:aar)"
  "$(aar_classes com.facebook.soloader:soloader:0.12.1:aar)"
  "$(artifact com.facebook.yoga:proguard-annotations:1.19.0)"
  "$(artifact com.google.code.findbugs:jsr305:3.0.2)"
  "$(artifact com.facebook.infer.annotation:infer-annotation:0.18.0)"
  "$(artifact "net.java.dev.jna:jna:$JNA")"
  "$(artifact "org.jetbrains.kotlinx:kotlinx-coroutines-core-jvm:$coroutines")"
  "$(artifact "org.jetbrains.kotlinx:kotlinx-coroutines-android:$coroutines")"
)
classpath="$(IFS=:; echo "${cp_parts[*]}")"

echo "compiling android/src/main with Kotlin $KOTLIN against react-android $REACT (codegen $CODEGEN) and kotlinx-coroutines $coroutines"
started=$SECONDS
set +e
"$kotlin_home/bin/kotlinc" -jvm-target 17 -nowarn \
  "$root/android/src/main/java" "$spec" \
  -cp "$classpath" -d "$work/module.jar" >"$work/kotlinc.log" 2>&1
rc=$?
set -e
grep -v '^warning:' "$work/kotlinc.log" | head -n 40 || true
echo "floor compile took $((SECONDS - started)) s"
if [ $rc -ne 0 ] || [ ! -f "$work/module.jar" ]; then
  echo "0 passed, 1 failed"
  exit 1
fi
echo "1 passed, 0 failed"
