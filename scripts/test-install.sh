#!/usr/bin/env bash
# The package as a new user gets it: packs the library, installs the tarball
# (a copy, not a link) into a scratch React Native app made by the community
# CLI, and checks what the app's build would do with it:
#   - `react-native config` autolinks it: Android package import + instance
#     (once android/ exists), iOS podspec (once the podspec exists);
#   - codegen from the installed package: iOS through the app's
#     generate-codegen-artifacts.js, Android through the same two commands the
#     React Gradle plugin runs for the library (schema, then specs with the
#     library's javaPackageName);
#   - Metro bundles the app for Android and iOS with the library in it.
#
#   scripts/test-install.sh [RN_VERSION...]     default: 0.88.1 0.76.9
#
# The scratch apps (with node_modules) are cached under
# ~/.cache/s3bgu-ci/scratch-apps (S3BGU_CI_CACHE moves it); a run re-installs
# only the tarball. Needs Node >= 22.13 (scripts/test-js.sh provides it).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
start=$SECONDS
CLI_VERSION=20.2.0

fail() { echo "test-install: $*" >&2; exit 1; }
step() { printf '\n== %s (%ss)\n' "$*" "$((SECONDS - start))"; }

node -e '
  const [major, minor] = process.versions.node.split(".").map(Number);
  process.exit((major === 22 && minor >= 13) || (major === 24 && minor >= 3) || major >= 26 ? 0 : 1);' ||
  fail "needs Node >= 22.13 (have $(node --version)); run it through scripts/test-js.sh"

versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(0.88.1 0.76.9)
cache="${S3BGU_CI_CACHE:-$HOME/.cache/s3bgu-ci}/scratch-apps"
mkdir -p "$cache"
# The cached apps are installed into in place: two runs on one machine take
# turns (flock, util-linux) rather than swap packages under each other.
exec 9>"$cache/.lock"
flock 9
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The recipe of each scratch app: the CLI template it starts from and the
# versions it is moved to (no 0.88 template is published: 0.87's, bumped).
recipe() {
  case "$1" in
    0.88.*) echo "template=0.87.1 react=19.3.1 react-native=$1 @react-native/babel-preset=$1 @react-native/metro-config=$1" ;;
    0.76.*) echo "template=$1" ;;
    *) fail "no recipe for React Native $1 (known: 0.88.x, 0.76.x)" ;;
  esac
}

# -- the tarball ------------------------------------------------------------------
step "npm pack (prepack builds lib/)"
(cd "$root" && npm pack --pack-destination "$work" --json --loglevel=error >"$work/pack.json")
tarball="$work/$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"))[0].filename)' "$work/pack.json")"
[ -s "$tarball" ] || fail "npm pack wrote no tarball"
# A listing file, not a pipe: grep -q stopping early would fail tar under pipefail.
tar tzf "$tarball" >"$work/listing.txt"
has_android=0
has_podspec=0
if grep -qx 'package/android/build.gradle' "$work/listing.txt"; then has_android=1; fi
if grep -qE '^package/[^/]+\.podspec$' "$work/listing.txt"; then has_podspec=1; fi
echo "$(basename "$tarball"): $(wc -c <"$tarball") bytes, android/build.gradle: $has_android, podspec: $has_podspec"
# Both native halves are part of the package: a tarball without one of them
# would install a module with nothing behind it on that platform.
[ "$has_android" = 1 ] || fail "the tarball has no android/build.gradle"
[ "$has_podspec" = 1 ] || fail "the tarball has no podspec"

scratch_app() {
  local version=$1 dir=$2 spec template
  spec="$(recipe "$version")"
  # The marker also names what the app keeps of the template's dev tooling.
  local marker="$spec; dev: babel cli metro typescript"
  if [ -f "$dir/.s3bgu-recipe" ] && [ "$(cat "$dir/.s3bgu-recipe")" = "$marker" ] && [ -d "$dir/node_modules/react-native" ]; then
    echo "cached: $dir ($spec)"
    return
  fi
  step "scratch app for React Native $version (community CLI $CLI_VERSION; $spec)"
  template="${spec%% *}"
  template="${template#template=}"
  rm -rf "$dir" "$cache/ScratchApp"
  (cd "$cache" && npx --yes "@react-native-community/cli@$CLI_VERSION" init ScratchApp --version "$template" \
    --skip-install --skip-git-init --install-pods false >"$work/init.log" 2>&1) ||
    { cat "$work/init.log"; fail "react-native init $template failed"; }
  mv "$cache/ScratchApp" "$dir"
  # Only what building and bundling need: no lint or test tooling.
  node -e '
    const fs = require("fs");
    const [file, spec] = process.argv.slice(1);
    const p = JSON.parse(fs.readFileSync(file, "utf8"));
    const pins = Object.fromEntries(spec.split(" ").slice(1).map(kv => kv.split(/=(?=[^=]*$)/)));
    // TypeScript and the type packages stay: the README samples are compiled with them.
    const keepDev = /^(@babel\/|@react-native-community\/cli|@react-native\/(babel-preset|metro-config|typescript-config)$|typescript$|@types\/(react|jest)$)/;
    delete p.dependencies["@react-native/new-app-screen"];
    p.devDependencies = Object.fromEntries(Object.entries(p.devDependencies).filter(([k]) => keepDev.test(k)));
    for (const [name, version] of Object.entries(pins)) {
      if (name in p.dependencies) p.dependencies[name] = version;
      else p.devDependencies[name] = version;
    }
    fs.writeFileSync(file, JSON.stringify(p, null, 2) + "\n");
  ' "$dir/package.json" "$spec"
  # An app that uses the library, so the bundle must contain it.
  cat >"$dir/App.tsx" <<'EOF'
import React from 'react';
import { Text } from 'react-native';
import { UPLOAD_STATES, setConfig, uploadFile } from 'react-native-s3-bg-uploader';

export default function App() {
  return <Text>{`${UPLOAD_STATES.length} states, ${typeof setConfig}, ${typeof uploadFile}`}</Text>;
}
EOF
  rm -rf "$dir/__tests__"
  (cd "$dir" && npm install --no-audit --no-fund --loglevel=error --prefer-offline) || fail "npm install of the scratch app failed"
  echo "$marker" >"$dir/.s3bgu-recipe"
}

check_version() {
  local version=$1 t0=$SECONDS
  local dir="$cache/rn-$version"
  scratch_app "$version" "$dir"
  cd "$dir"

  step "RN $version: npm install the tarball"
  mkdir -p vendor
  cp "$tarball" vendor/react-native-s3-bg-uploader.tgz
  # Same path as the previous run: without this npm may keep the old copy.
  rm -rf node_modules/react-native-s3-bg-uploader
  npm install ./vendor/react-native-s3-bg-uploader.tgz --no-audit --no-fund --loglevel=error --prefer-offline ||
    fail "installing the tarball into the React Native $version app failed (peer dependencies?)"
  local installed=node_modules/react-native-s3-bg-uploader
  if [ ! -d "$installed" ] || [ -L "$installed" ]; then fail "$installed is not a plain directory (a link?)"; fi
  # The installed package is exactly the tarball, file for file.
  mkdir -p "$work/unpacked"
  tar xzf "$tarball" -C "$work/unpacked"
  diff -r "$work/unpacked/package" "$installed" >/dev/null || fail "the installed package differs from the tarball"
  rm -rf "$work/unpacked"
  echo "installed: $(find "$installed" -type f | wc -l) files, the tarball's"

  step "RN $version: react-native config (autolinking)"
  npx react-native config >"$work/config.json" 2>"$work/config.err" || { cat "$work/config.err"; fail "react-native config failed"; }
  node -e '
    const fs = require("fs");
    const [file, dir, hasAndroid, hasPodspec] = process.argv.slice(1);
    const config = JSON.parse(fs.readFileSync(file, "utf8"));
    const dep = config.dependencies["react-native-s3-bg-uploader"];
    if (!dep && hasAndroid !== "1" && hasPodspec !== "1") {
      // The CLI lists only packages with native code.
      console.log("android, ios: NOT CHECKED, the package has neither android/build.gradle nor a podspec yet (the Android and iOS branches add them)");
      process.exit(0);
    }
    if (!dep) throw new Error("react-native config does not list react-native-s3-bg-uploader");
    const root = fs.realpathSync(dir + "/node_modules/react-native-s3-bg-uploader");
    if (fs.realpathSync(dep.root) !== root) throw new Error("autolinking uses " + dep.root + ", not the installed package");
    const { android, ios } = dep.platforms;
    if (hasAndroid === "1") {
      if (!android) throw new Error("no Android autolinking for the library");
      if (!/^import com\.s3bguploader\.\w+Package;$/.test(android.packageImportPath))
        throw new Error("unexpected packageImportPath " + android.packageImportPath);
      if (!/^new \w+Package\(\)$/.test(android.packageInstance))
        throw new Error("unexpected packageInstance " + android.packageInstance);
      if (fs.realpathSync(android.sourceDir) !== root + "/android") throw new Error("sourceDir " + android.sourceDir);
      if (android.libraryName !== "S3BgUploaderSpec") throw new Error("codegen libraryName " + android.libraryName);
      console.log("android:", android.packageImportPath, "|", android.packageInstance, "| libraryName", android.libraryName);
    } else {
      if (android) throw new Error("Android autolinking without android/build.gradle?");
      console.log("android: NOT CHECKED, the package has no android/build.gradle yet (the Android branch adds it)");
    }
    if (hasPodspec === "1") {
      if (!ios || !ios.podspecPath) throw new Error("no iOS autolinking (podspec) for the library");
      if (fs.realpathSync(ios.podspecPath) !== root + "/react-native-s3-bg-uploader.podspec")
        throw new Error("podspecPath " + ios.podspecPath);
      console.log("ios: podspec", ios.podspecPath.replace(dir + "/", ""));
    } else {
      console.log("ios: NOT CHECKED, the package has no podspec yet (the iOS branch adds it)");
    }
  ' "$work/config.json" "$dir" "$has_android" "$has_podspec"

  step "RN $version: codegen from the installed package"
  local out="$work/codegen-$version"
  # iOS: what `pod install` runs for the app (every dependency with codegenConfig).
  node node_modules/react-native/scripts/generate-codegen-artifacts.js -p . -t ios -o "$out/ios" >"$work/codegen-ios.log" 2>&1 ||
    { cat "$work/codegen-ios.log"; fail "iOS codegen failed"; }
  local ios_spec
  ios_spec="$(find "$out/ios" -path '*/S3BgUploaderSpec/S3BgUploaderSpec.h' | head -n 1)"
  [ -n "$ios_spec" ] || fail "iOS codegen wrote no S3BgUploaderSpec/S3BgUploaderSpec.h"
  grep -q 'NativeS3BgUploaderSpec' "$ios_spec" || fail "S3BgUploaderSpec.h has no NativeS3BgUploaderSpec protocol"
  [ -n "$(find "$out/ios" -name 'S3BgUploaderSpec-generated.mm')" ] || fail "iOS codegen wrote no S3BgUploaderSpec-generated.mm"
  local providers
  providers="$(find "$out/ios" -name 'RCTModuleProviders.mm' | head -n 1)"
  if [ -n "$providers" ]; then
    # 0.77+: modulesProvider maps the TurboModule name to the ObjC class.
    grep -q '"S3BgUploader"' "$providers" || fail "RCTModuleProviders.mm does not map S3BgUploader"
  fi
  echo "ios: ${ios_spec#"$out/"}${providers:+, S3BgUploader in RCTModuleProviders.mm}"
  # Android: the library's Gradle build runs these two with its codegenConfig.
  local pkg
  pkg="$(node -p 'require("./node_modules/react-native-s3-bg-uploader/package.json").codegenConfig.android.javaPackageName')"
  local lib_name
  lib_name="$(node -p 'require("./node_modules/react-native-s3-bg-uploader/package.json").codegenConfig.name')"
  local js_dir
  js_dir="node_modules/react-native-s3-bg-uploader/$(node -p 'require("./node_modules/react-native-s3-bg-uploader/package.json").codegenConfig.jsSrcsDir')"
  local codegen
  codegen="$(dirname "$(node -p 'require.resolve("@react-native/codegen/package.json", { paths: [require.resolve("react-native/package.json")] })')")"
  mkdir -p "$out/android"
  node "$codegen/lib/cli/combine/combine-js-to-schema-cli.js" --platform android "$out/android/schema.json" "$js_dir" ||
    fail "Android codegen (schema) failed"
  node node_modules/react-native/scripts/generate-specs-cli.js --platform android --schemaPath "$out/android/schema.json" \
    --outputDir "$out/android/gen" --libraryName "$lib_name" --javaPackageName "$pkg" >"$work/codegen-android.log" 2>&1 ||
    { cat "$work/codegen-android.log"; fail "Android codegen (specs) failed"; }
  local java_spec="$out/android/gen/java/${pkg//.//}/NativeS3BgUploaderSpec.java"
  [ -s "$java_spec" ] || fail "Android codegen wrote no ${java_spec#"$out/"}"
  grep -q "^package $pkg;" "$java_spec" || fail "the Java spec is not in package $pkg"
  for f in "jni/$lib_name.h" "jni/$lib_name-generated.cpp" jni/CMakeLists.txt; do
    [ -s "$out/android/gen/$f" ] || fail "Android codegen wrote no $f"
  done
  # The module the package ships must extend this very spec class.
  if [ -d "$installed/android/src/main/java/com/s3bguploader" ]; then
    if grep -rqE 'class \w+\([^)]*\)\s*:\s*NativeS3BgUploaderSpec\(' "$installed/android/src/main/java/com/s3bguploader" ||
      grep -rqE 'extends NativeS3BgUploaderSpec' "$installed/android/src/main/java/com/s3bguploader"; then
      echo "android: the shipped module extends $pkg.NativeS3BgUploaderSpec"
    elif [ "$has_android" = 1 ]; then
      fail "no class in the shipped android/ sources extends NativeS3BgUploaderSpec"
    fi
  fi
  echo "android: ${java_spec#"$out/"}, jni/$lib_name.h, jni/$lib_name-generated.cpp"

  step "RN $version: the documentation's TypeScript samples, compiled as this app compiles its code"
  # Every ts/tsx block of the README, against the installed package's types,
  # with the template's tsconfig and TypeScript (scripts/check-samples.mjs).
  # The documentation site's pages too (docs/content; not docs/build, which
  # holds a copy of them and the generated API reference).
  local pages=("$root/README.md")
  while IFS= read -r -d '' page; do pages+=("$page"); done < <(find "$root/docs/content" -name '*.md' -print0 | sort -z)
  node "$root/scripts/check-samples.mjs" --app "$dir" "${pages[@]}" ||
    fail "a documentation sample does not compile in the React Native $version app"

  local platform bundle
  for platform in android ios; do
    step "RN $version: Metro bundle for $platform"
    bundle="$work/bundle-$version-$platform.js"
    npx react-native bundle --platform "$platform" --dev false --entry-file index.js --bundle-output "$bundle" \
      --sourcemap-output "$bundle.map" --assets-dest "$work/assets-$version-$platform" >"$work/metro.log" 2>&1 ||
      { cat "$work/metro.log"; fail "Metro could not bundle the React Native $version app for $platform"; }
    # shellcheck disable=SC2016 # JavaScript source: ${...} is a template literal, not shell
    node -e '
      const fs = require("fs");
      const [map, dir] = process.argv.slice(1);
      const m = JSON.parse(fs.readFileSync(map, "utf8"));
      const sources = m.sections ? m.sections.flatMap(s => s.map.sources) : m.sources;
      const lib = sources.filter(s => s.includes("node_modules/react-native-s3-bg-uploader/lib/module/"));
      if (!lib.some(s => s.endsWith("/lib/module/index.js"))) throw new Error("the bundle lacks the library");
      console.log(`${sources.length} modules, ${lib.length} from the installed library`);
    ' "$bundle.map" "$dir"
    printf 'bundle (%s): %s bytes\n' "$platform" "$(wc -c <"$bundle")"
  done
  cd "$root"
  echo "RN $version: install, autolinking, codegen and bundles passed in $((SECONDS - t0)) s"
}

for version in "${versions[@]}"; do
  check_version "$version"
done
echo
echo "test-install: React Native ${versions[*]} passed in $((SECONDS - start)) s"
