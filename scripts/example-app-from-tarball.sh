#!/usr/bin/env bash
# Makes the example app use the library as users get it: the packed
# tarball, installed as a plain copy over the `file:..` link its lockfile
# names (as scripts/test-install.sh does for scratch apps). The native
# workflow runs it before building the app, so the APK and the iOS builds
# contain exactly what npm will publish (jniLibs, xcframework, podspec,
# consumer ProGuard rules).
#
#   scripts/example-app-from-tarball.sh PACKAGE.tgz
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tgz="${1:-}"
[ -s "$tgz" ] || { echo "usage: $0 PACKAGE.tgz" >&2; exit 2; }
tgz="$(cd "$(dirname "$tgz")" && pwd)/$(basename "$tgz")"

cd "$root/example-app"
npm ci --no-audit --no-fund --loglevel=error
rm -rf node_modules/react-native-s3-bg-uploader
# --no-save: the committed package.json and lockfile keep `file:..` for
# development; this install is for the build on this runner only.
npm install --no-save --no-audit --no-fund --loglevel=error "$tgz"
installed=node_modules/react-native-s3-bg-uploader
if [ ! -d "$installed" ] || [ -L "$installed" ]; then
  echo "example-app-from-tarball: $installed is not a plain directory (still the file:.. link?)" >&2
  exit 1
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
tar xzf "$tgz" -C "$work"
diff -r "$work/package" "$installed" >/dev/null || { echo "example-app-from-tarball: the installed package differs from $tgz" >&2; exit 1; }
echo "example app: react-native-s3-bg-uploader $(node -p 'require("./node_modules/react-native-s3-bg-uploader/package.json").version') from $(basename "$tgz"), $(find "$installed" -type f | wc -l | tr -d ' ') files"
