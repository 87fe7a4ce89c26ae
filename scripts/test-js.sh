#!/usr/bin/env bash
# The JavaScript step of scripts/test.sh: the TypeScript API, its tests, the
# TurboModule codegen, the library build and the example app's Metro bundles.
# Works on a fresh Debian 12 machine: installs node/npm with apt when they
# are missing, and Node 22 from the npm registry when the system's node is
# older than React Native 0.88's tooling accepts.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
start=$SECONDS

step() { printf '\n== %s (%ss)\n' "$*" "$((SECONDS - start))"; }
fail() { echo "test-js: $*" >&2; exit 1; }

# Pinned toolchain used when the system's node is too old.
NODE_VERSION=22.23.3
NPM_VERSION=11.21.2

# -- node and npm -------------------------------------------------------------
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  step "installing nodejs and npm (apt)"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq nodejs npm
fi

# React Native 0.88 (react-native, metro, the jest preset) wants Node
# ^22.13 || ^24.3 || >=26.
node_is_recent() {
  node -e '
    const [major, minor] = process.versions.node.split(".").map(Number);
    const ok = (major === 22 && minor >= 13) || (major === 24 && minor >= 3) || major >= 26;
    process.exit(ok ? 0 : 1);'
}
if ! node_is_recent; then
  case "$(uname -m)" in
    x86_64) arch=x64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) fail "no Node $NODE_VERSION package for $(uname -m); install Node >= 22.13" ;;
  esac
  tools="${S3BGU_NODE_DIR:-$HOME/.cache/s3bgu/node-$NODE_VERSION-$arch}"
  if [ ! -x "$tools/node_modules/.bin/node" ] || [ ! -x "$tools/node_modules/.bin/npm" ]; then
    step "installing Node $NODE_VERSION and npm $NPM_VERSION from the npm registry (system node is $(node --version))"
    mkdir -p "$tools"
    # The platform package ships the binary itself: no install script runs.
    npm install --prefix "$tools" --no-save --no-package-lock --prefer-offline \
      --no-audit --no-fund --loglevel=error \
      "node-linux-$arch@$NODE_VERSION" "npm@$NPM_VERSION"
    ln -sf ../node-linux-$arch/bin/node "$tools/node_modules/.bin/node"
  fi
  export PATH="$tools/node_modules/.bin:$PATH"
  node_is_recent || fail "node is still $(node --version) after installing Node $NODE_VERSION"
fi
echo "node $(node --version), npm $(npm --version)"

npm_ci() {
  # --prefer-offline: a warm npm cache needs no network round trips.
  npm ci --prefer-offline --no-audit --no-fund --loglevel=error
}

# -- the library --------------------------------------------------------------
step "npm ci (library)"
npm_ci

step "tsc --noEmit (library and tests)"
npx tsc --noEmit

step "eslint (library, tests, example app sources)"
npx eslint --max-warnings 0 js example-app/App.tsx example-app/src

step "prettier --check"
npx prettier --check 'js/**/*.{ts,tsx}' 'example-app/App.tsx' 'example-app/src/**/*.{ts,tsx}' \
  app.plugin.js 'plugin/**/*.js' 'test/packaging/*.mjs' scripts/check-pack.mjs scripts/check-samples.mjs \
  'docs/test/*.mjs'

step "jest"
npx jest --ci

gen=$(mktemp -d)
trap 'rm -rf "$gen"' EXIT
# With the development version of codegen and with the oldest the library
# supports (react-native >= 0.76): apps run their own version on the spec.
codegen_check() {
  local version=$1 cli=$2 out="$gen/$1"
  step "codegen $version: the TurboModule spec -> Java and ObjC++ specs"
  # The same inputs an app's build uses: every spec file in codegenConfig.jsSrcsDir.
  node "$cli/combine/combine-js-to-schema-cli.js" "$gen/schema-$version.json" js/src -l S3BgUploaderSpec
  node "$cli/generators/generate-all.js" "$gen/schema-$version.json" S3BgUploaderSpec "$out" com.s3bguploader
  local java_spec="$out/java/com/s3bguploader/NativeS3BgUploaderSpec.java"
  [ -f "$java_spec" ] || fail "codegen $version wrote no Java spec at java/com/s3bguploader/NativeS3BgUploaderSpec.java"
  grep -q '^package com.s3bguploader;' "$java_spec" || fail "the Java spec is not in package com.s3bguploader"
  local member f
  for member in emitOnProgress emitOnStateChange 'void setConfig' 'void uploadFile' 'void pause' \
    'void resume' 'void cancel' 'void getUploads' 'void getSummary' 'void setAsideQueue'; do
    grep -q "$member" "$java_spec" || fail "the Java spec of codegen $version has no $member"
  done
  for f in S3BgUploaderSpec/S3BgUploaderSpec.h S3BgUploaderSpec/S3BgUploaderSpec-generated.mm \
    S3BgUploaderSpecJSI.h jni/S3BgUploaderSpec.h jni/S3BgUploaderSpec-generated.cpp; do
    [ -s "$out/$f" ] || fail "codegen $version wrote no $f"
  done
  grep -q 'emitOnStateChange' "$out/S3BgUploaderSpec/S3BgUploaderSpec.h" ||
    fail "the ObjC++ spec of codegen $version has no emitOnStateChange"
  echo "codegen $version: Java com.s3bguploader.NativeS3BgUploaderSpec, ObjC++ S3BgUploaderSpec.h and S3BgUploaderSpec-generated.mm"
}
codegen_check 0.88 "$root/node_modules/@react-native/codegen/lib/cli"
codegen_check 0.76 "$root/node_modules/@react-native/codegen-0.76/lib/cli"

step "build the library (lib/)"
rm -rf lib
npm run --silent build
for f in lib/module/index.js lib/typescript/index.d.ts; do
  [ -s "$f" ] || fail "the build wrote no $f"
done
# The tarball (what npm would publish), the Expo config plugin on Expo's
# template files, and the checks the phone build scripts run on binaries.
step "packaging tests (node --test test/packaging)"
packaging_status=0
node --test --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$gen/packaging.tap" 'test/packaging/*.test.mjs' ||
  packaging_status=$?
# The plain closing line CI reads, from the runner's own TAP counts.
awk '$1 == "#" && $2 == "pass" { p = $3 } $1 == "#" && $2 == "fail" { f = $3 }
  END { printf "packaging: %d passed, %d failed\n", p, f }' "$gen/packaging.tap"
[ "$packaging_status" = 0 ] || fail "packaging tests failed"

# The documentation site: MkDocs --strict over the pages and the TypeDoc API
# reference (a broken link or anchor fails), and its link-check tests. The
# pages' TypeScript samples are compiled by test-install.sh below.
step "documentation site (docs/build.sh)"
./docs/build.sh

# -- the example app ----------------------------------------------------------
cd "$root/example-app"
step "npm ci (example app)"
npm_ci

step "tsc --noEmit (example app)"
npx tsc --noEmit

step "autolinking (react-native config)"
# Once the library has its native modules (android/, the podspec), the app's
# autolinking must find them through file:..
npx react-native config >build-config.json 2>/dev/null || { rm -f build-config.json; fail "react-native config failed"; }
node -e '
  const fs = require("fs");
  const [file, root] = process.argv.slice(1);
  const config = JSON.parse(fs.readFileSync(file, "utf8"));
  fs.unlinkSync(file);
  const native = {
    // android/ also holds the generated bindings: the Gradle file makes it a library.
    android: fs.existsSync(root + "/android/build.gradle"),
    ios: fs.readdirSync(root).some(f => f.endsWith(".podspec")),
  };
  const dep = config.dependencies["react-native-s3-bg-uploader"];
  if (!native.android && !native.ios) {
    console.log("the library has no android/ or podspec yet: nothing to autolink");
    process.exit(0);
  }
  for (const platform of ["android", "ios"]) {
    if (native[platform] && !(dep && dep.platforms && dep.platforms[platform])) {
      throw new Error("autolinking does not find the library for " + platform);
    }
  }
  console.log("autolinking finds the library:", JSON.stringify(dep.platforms).slice(0, 300));
' build-config.json "$root"

bundle() {
  local platform=$1 out=$2
  step "Metro bundle for $platform"
  rm -rf "build/$platform"
  mkdir -p "build/$platform"
  npx react-native bundle --platform "$platform" --dev false --entry-file index.js \
    --bundle-output "build/$platform/$out" --sourcemap-output "build/$platform/$out.map" \
    --assets-dest "build/$platform/assets" >"build/$platform/metro.log" 2>&1 ||
    { cat "build/$platform/metro.log"; fail "Metro could not bundle for $platform"; }
  # The bundle must take the library's built output, and React only from the app.
  # shellcheck disable=SC2016 # JavaScript source: ${...} is a template literal, not shell
  node -e '
    const fs = require("fs");
    const [map, root] = process.argv.slice(1);
    const m = JSON.parse(fs.readFileSync(map, "utf8"));
    const sources = m.sections ? m.sections.flatMap(s => s.map.sources) : m.sources;
    const lib = sources.filter(s => s.startsWith(root + "/lib/module/"));
    const reacts = sources.filter(s => /\/node_modules\/react\/cjs\/react\.production\.js$/.test(s));
    const foreign = sources.filter(s => s.startsWith(root + "/node_modules/"));
    if (!lib.some(s => s.endsWith("/lib/module/index.js"))) throw new Error("the bundle does not contain lib/module/index.js");
    if (reacts.length !== 1) throw new Error("expected one copy of React, found: " + reacts.join(", "));
    if (foreign.length) throw new Error("the bundle takes modules from the library dev dependencies: " + foreign.slice(0, 5).join(", "));
    console.log(`${sources.length} modules, ${lib.length} from the library build`);
  ' "build/$platform/$out.map" "$root"
  printf 'bundle size (%s): %s bytes\n' "$platform" "$(stat -c %s "build/$platform/$out")"
}
bundle android index.android.bundle
bundle ios main.jsbundle

cd "$root"
# The package as a user installs it: tarball -> scratch apps (0.88, 0.76).
step "install the tarball into scratch apps (scripts/test-install.sh)"
install_started=$SECONDS
./scripts/test-install.sh
echo "install step took $((SECONDS - install_started)) s"

# The Expo plugin in real prebuilds: fresh apps of the oldest and the newest
# SDK claimed, the README's app.json (apps cached in ~/.cache/s3bgu-ci/expo-apps).
step "npx expo prebuild with the plugin, Expo SDK 52 and 58 (scripts/test-expo-prebuild.sh)"
./scripts/test-expo-prebuild.sh

echo
echo "JS step passed in $((SECONDS - start))s"
