#!/usr/bin/env bash
# The Node backend kit's suite (backend-kit/): type-check, build, the
# package's file list, then node --test against the testkit's s3s-fs store
# (a real S3-protocol server on loopback that checks SigV4 signatures) and
# the s3bgu CLI (`check` and `upload` through the kit).
#
# Needs node >= 20.19 and npm (scripts/test-js.sh installs them), and cargo.
# Honours CARGO_TARGET_DIR; with S3BGU and STORE_HARNESS both set (paths of
# the binaries) nothing is built. Prints "N passed, N failed" last.
set -euo pipefail
kit="$(cd "$(dirname "$0")/.." && pwd)"
root="$(cd "$kit/.." && pwd)"
cd "$kit"

fail() { echo "backend-kit: $*" >&2; echo "0 passed, 1 failed"; exit 1; }

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  fail "node and npm are needed (scripts/test-js.sh installs them)"
fi
node -e '
  const [major, minor] = process.versions.node.split(".").map(Number);
  process.exit(major > 20 || (major === 20 && minor >= 19) ? 0 : 1);' ||
  fail "node $(node --version) is older than the kit supports (20.19)"

echo "npm ci (backend-kit)"
npm ci --prefer-offline --no-audit --no-fund --loglevel=error

echo "prettier --check"
npx prettier --check 'src/**/*.ts' 'examples/**/*.ts' 'test/**/*.mjs'

echo "build (dist/)"
rm -rf dist
npm run --silent build

# The examples import the package by its name: they check the built types.
echo "tsc --noEmit (sources and examples, strict)"
npx tsc --noEmit

# What npm would publish: the build with its types, the README, no tests.
echo "package contents (npm pack --dry-run)"
npm pack --dry-run --json --ignore-scripts --loglevel=error | node -e '
  const files = JSON.parse(require("fs").readFileSync(0, "utf8"))[0].files.map((f) => f.path);
  const need = ["dist/index.js", "dist/index.d.ts", "dist/backend.d.ts", "README.md", "package.json", "LICENSE"];
  const missing = need.filter((f) => !files.includes(f));
  const stray = files.filter((f) => /^(test|examples|node_modules)\//.test(f));
  if (missing.length || stray.length) {
    console.error("missing:", missing.join(", ") || "-", "| should not be there:", stray.join(", ") || "-");
    process.exit(1);
  }
  console.log(files.length + " files, " + files.filter((f) => f.endsWith(".d.ts")).length + " type declarations");
' || fail "the package's file list is wrong"

if [ -z "${S3BGU:-}" ] || [ -z "${STORE_HARNESS:-}" ]; then
  echo "building s3bgu and the store harness (debug)"
  (cd "$root" && cargo build --locked -q -p s3bgu -p s3bgu-testkit --bin s3bgu --bin store-harness)
  target="${CARGO_TARGET_DIR:-$root/target}"
  export S3BGU="$target/debug/s3bgu" STORE_HARNESS="$target/debug/store-harness"
fi

# The SDK warns that its releases from 2027 on need Node 22; the kit itself
# supports 20.19, and CI runs the system's Node.
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
tap="$(mktemp)"
trap 'rm -f "$tap"' EXIT
status=0
node --test --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$tap" test/*.test.mjs || status=$?
# The plain closing line CI reads, from the runner's own TAP counts.
awk '$1 == "#" && $2 == "pass" { p = $3 } $1 == "#" && $2 == "fail" { f = $3 }
  END { printf "%d passed, %d failed\n", p, f }' "$tap"
exit "$status"
