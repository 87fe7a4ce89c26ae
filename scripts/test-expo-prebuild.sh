#!/usr/bin/env bash
# The Expo config plugin as a new user meets it: a fresh blank-typescript
# Expo app of the oldest and of the newest SDK the package claims, the packed
# tarball installed into it, the README's own app.json plugin entry, then a
# real `npx expo prebuild` from that SDK's bare-minimum template, twice. Each
# must succeed, write the hook and the Info.plist entries the plugin's
# constants name, and the second prebuild must leave ios/ and android/
# byte-identical.
#
#   scripts/test-expo-prebuild.sh
#
# Templates (checked against the integrity pinned below) and the apps' node
# modules are cached under ~/.cache/s3bgu-ci/expo-apps (S3BGU_CI_CACHE moves
# it): a rerun installs only the tarball and takes seconds per SDK.
# Needs Node >= 20 and the library's dependencies installed (npm ci).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
start=$SECONDS

fail() { echo "test-expo-prebuild: $*" >&2; exit 1; }
step() { printf '\n== %s (%ss)\n' "$*" "$((SECONDS - start))"; }

cache="${S3BGU_CI_CACHE:-$HOME/.cache/s3bgu-ci}/expo-apps"
mkdir -p "$cache/templates"
exec 9>"$cache/.lock"
flock 9
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export CI=1 EXPO_NO_TELEMETRY=1

# SDK | blank-typescript app template | its integrity | bare-minimum native template | its integrity | pins
# The SDK 58 app template names preview versions: pinned to the SDK's releases
# (expo's bundledNativeModules.json for 58.0.26).
recipes=(
  "52|expo-template-blank-typescript@52.0.78|sha512-FdBwqbE8r8DAmIfYS7FV4PW0Td3FkM9Y5Hq5aIdNYwFJcSxDmUGFuee0qpk4xmefq3SZIU+9Do3bGJN1ZeS8Pg==|expo-template-bare-minimum@52.0.79|sha512-VoBUnXgFFs2UZ6KlhVonxtaI8S5x3n3wDrxtWycfJnbAwCjBCfBK/5c8GmbbFZ2RXP+T/B62682CPX+1bRFbcw==|"
  "58|expo-template-blank-typescript@58.0.2|sha512-7EAdIUPt9cYSCrTOOoeWJjwMu6WBFrdBF49VYtlcj8SgMY/aBlPe9710riC01NZKha4YlCELUlUgT7+6i/mOAQ==|expo-template-bare-minimum@58.0.8|sha512-xZCAzR9qfAYMYZHhKcA9vwO9xEebkJr94a6brQdyKDzJGmjhf9q6l1bijkIer0z0RzfyMoacpjG/lOYscw0O9A==|expo=58.0.26 expo-status-bar=~58.0.5 react=19.3.0 react-native=0.88.1"
)

integrity_of() { printf 'sha512-%s' "$(openssl dgst -sha512 -binary "$1" | base64 -w0)"; }

# A template tarball from npm, once, checked against its pinned integrity.
template() {
  local spec=$1 integrity=$2 file
  file="$cache/templates/${spec/@/-}.tgz"
  if [ ! -f "$file" ] || [ "$(integrity_of "$file")" != "$integrity" ]; then
    (cd "$work" && npm pack "$spec" --prefer-offline --loglevel=error >/dev/null) || fail "npm pack $spec failed"
    mv "$work/${spec/@/-}.tgz" "$file"
    [ "$(integrity_of "$file")" = "$integrity" ] || fail "$spec from the registry does not match its pinned integrity"
  fi
  echo "$file"
}

step "npm pack the library (prepack builds lib/)"
(cd "$root" && npm pack --pack-destination "$work" --json --loglevel=error >"$work/pack.json")
tarball="$work/$(node -p 'JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"))[0].filename' "$work/pack.json")"
[ -s "$tarball" ] || fail "npm pack wrote no tarball"

passed=0
failed=0
for recipe in "${recipes[@]}"; do
  IFS='|' read -r sdk app_spec app_integrity native_spec native_integrity pins <<<"$recipe"
  dir="$cache/sdk$sdk"
  app_tgz="$(template "$app_spec" "$app_integrity")"
  native_tgz="$(template "$native_spec" "$native_integrity")"
  marker="$app_spec $pins"
  if [ ! -f "$dir/.s3bgu-recipe" ] || [ "$(cat "$dir/.s3bgu-recipe")" != "$marker" ] || [ ! -d "$dir/node_modules/expo" ]; then
    step "SDK $sdk: a fresh app from $app_spec ${pins:+($pins)}"
    rm -rf "$dir"
    mkdir -p "$dir"
    tar xzf "$app_tgz" -C "$dir" --strip-components=1
    [ -f "$dir/gitignore" ] && mv "$dir/gitignore" "$dir/.gitignore"
    # Only what prebuild needs: the template's dependencies, the pins, no dev tooling.
    # shellcheck disable=SC2016 # JavaScript source: ${...} is a template literal, not shell
    node -e '
      const fs = require("fs");
      const [file, sdk, pins] = process.argv.slice(1);
      const p = JSON.parse(fs.readFileSync(file, "utf8"));
      p.name = `s3bgu-expo-sdk${sdk}`;
      p.private = true;
      delete p.version;
      delete p.devDependencies;
      for (const kv of pins.split(" ").filter(Boolean)) {
        const [name, version] = kv.split(/=(?=[^=]*$)/);
        p.dependencies[name] = version;
      }
      fs.writeFileSync(file, JSON.stringify(p, null, 2) + "\n");
    ' "$dir/package.json" "$sdk" "$pins"
    (cd "$dir" && npm install --no-audit --no-fund --prefer-offline --loglevel=error) >"$work/install.log" 2>&1 ||
      { cat "$work/install.log"; fail "npm install of the SDK $sdk app failed"; }
    echo "$marker" >"$dir/.s3bgu-recipe"
  else
    echo "cached: $dir ($marker)"
  fi

  step "SDK $sdk: install the tarball, the README's plugin entry, npx expo prebuild twice"
  cd "$dir"
  mkdir -p vendor
  cp "$tarball" vendor/react-native-s3-bg-uploader.tgz
  rm -rf node_modules/react-native-s3-bg-uploader
  npm install ./vendor/react-native-s3-bg-uploader.tgz --no-audit --no-fund --prefer-offline --loglevel=error >"$work/install.log" 2>&1 ||
    { cat "$work/install.log"; fail "installing the tarball into the SDK $sdk app failed"; }
  # The plugin entry exactly as the README's app.json snippet has it.
  # shellcheck disable=SC2016 # JavaScript source, not shell
  node -e '
    const fs = require("fs");
    const [readme, appJson] = process.argv.slice(1);
    const blocks = [...fs.readFileSync(readme, "utf8").matchAll(/```json\n([\s\S]*?)```/g)].map(m => JSON.parse(m[1]));
    const snippet = blocks.find(b => b.expo && Array.isArray(b.expo.plugins));
    if (!snippet) throw new Error("the README has no app.json snippet with expo.plugins");
    const app = JSON.parse(fs.readFileSync(appJson, "utf8"));
    app.expo.plugins = snippet.expo.plugins;
    app.expo.ios = { ...app.expo.ios, bundleIdentifier: "com.example.s3bgu" };
    app.expo.android = { ...app.expo.android, package: "com.example.s3bgu" };
    fs.writeFileSync(appJson, JSON.stringify(app, null, 2) + "\n");
  ' "$root/README.md" app.json
  rm -rf ios android
  t0=$SECONDS
  if ! npx expo prebuild --no-install --template "$native_tgz" >"$work/prebuild.log" 2>&1; then
    cat "$work/prebuild.log"
    echo "SDK $sdk: FAILED, npx expo prebuild"
    failed=$((failed + 1))
    cd "$root"
    continue
  fi
  first=$((SECONDS - t0))
  cp -r ios "$work/ios-$sdk"
  cp -r android "$work/android-$sdk"
  npx expo prebuild --no-install --template "$native_tgz" >"$work/prebuild2.log" 2>&1 ||
    { cat "$work/prebuild2.log"; fail "the second prebuild of SDK $sdk failed"; }
  ok=1
  if ! diff -r "$work/ios-$sdk" ios >"$work/diff.txt" || ! diff -r "$work/android-$sdk" android >>"$work/diff.txt"; then
    head -40 "$work/diff.txt"
    echo "SDK $sdk: FAILED, the second prebuild changed files"
    ok=0
  fi
  # What the installed plugin says it writes is what is on disk.
  # shellcheck disable=SC2016 # JavaScript source: ${...} is a template literal, not shell
  node -e '
    const fs = require("fs");
    const path = require("path");
    const { constants } = require(path.resolve("node_modules/react-native-s3-bg-uploader/app.plugin.js"));
    const plist = require(require.resolve("@expo/plist", { paths: [path.dirname(require.resolve("expo/package.json"))] })).default;
    const dir = "ios/HelloWorld";
    const delegate = fs.readdirSync(dir).find(f => /^AppDelegate\.(swift|mm)$/.test(f));
    const src = fs.readFileSync(path.join(dir, delegate), "utf8");
    const swift = delegate.endsWith(".swift");
    const count = s => src.split(s).length - 1;
    const problems = [];
    const imp = swift ? constants.IOS_SWIFT_IMPORT : constants.IOS_OBJC_IMPORT;
    const call = swift ? constants.IOS_SWIFT_HOOK_CALL : constants.IOS_OBJC_HOOK_CALL;
    if (count(imp) !== 1) problems.push(`${delegate}: ${count(imp)} x ${imp}`);
    if (count(call) !== 1) problems.push(`${delegate}: ${count(call)} x the hook call`);
    const info = plist.parse(fs.readFileSync(path.join(dir, "Info.plist"), "utf8"));
    if (JSON.stringify(info.UIBackgroundModes) !== JSON.stringify(constants.BACKGROUND_MODES))
      problems.push(`UIBackgroundModes ${JSON.stringify(info.UIBackgroundModes)}`);
    if (!(info.BGTaskSchedulerPermittedIdentifiers || []).includes(constants.BG_TASK_IDENTIFIERS))
      problems.push("BGTaskSchedulerPermittedIdentifiers lacks " + constants.BG_TASK_IDENTIFIERS);
    if (problems.length) { console.log(problems.join("\n")); process.exit(1); }
    console.log(`${delegate}: the import and the hook once; Info.plist: ${info.UIBackgroundModes}, ${constants.BG_TASK_IDENTIFIERS}`);
  ' || ok=0
  cd "$root"
  if [ "$ok" = 1 ]; then
    echo "SDK $sdk: prebuild ${first}s, second prebuild byte-identical"
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
  fi
done

echo
echo "expo prebuild: $passed passed, $failed failed ($((SECONDS - start)) s)"
[ "$failed" = 0 ]
