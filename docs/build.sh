#!/usr/bin/env bash
# Builds the documentation site: TypeDoc writes the API reference (Markdown,
# from js/src/index.ts) beside a copy of content/, then MkDocs builds the site
# with --strict, so a link to a missing page or heading fails the build.
# Then docs/test/*.test.mjs shows that check catching a broken link and anchor.
#
#   docs/build.sh [OUT]      default OUT: docs/build (not committed)
#
# MkDocs (PyPI, pinned with hashes in requirements.txt) goes into a venv under
# ~/.cache/s3bgu-ci (S3BGU_CI_CACHE moves it), keyed by that file's hash;
# TypeDoc comes from docs/package-lock.json. Needs python3 (with venv), node
# and the library's node_modules (npm ci at the root: TypeDoc reads the
# library's types through them); it runs npm ci there when they are missing.
#
# The TypeScript samples of the pages are compiled in the scratch React
# Native apps by scripts/test-install.sh (scripts/check-samples.mjs takes
# docs/**/*.md there); `docs/build.sh --samples` does it here too, against the
# apps that step left in the cache.
set -euo pipefail
docs="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$docs")"
start=$SECONDS
samples=0
if [ "${1:-}" = "--samples" ]; then samples=1; shift; fi
out="${1:-$docs/build}"
cache="${S3BGU_CI_CACHE:-$HOME/.cache/s3bgu-ci}"

step() { printf '\n== docs: %s (%ss)\n' "$*" "$((SECONDS - start))"; }
fail() { echo "docs/build.sh: $*" >&2; exit 1; }

command -v python3 >/dev/null || fail "needs python3 (apt-get install python3 python3-venv)"

# -- tools ----------------------------------------------------------------------
req_hash="$(sha256sum "$docs/requirements.txt" | cut -c1-16)"
venv="$cache/docs-venv-$req_hash"
if [ ! -x "$venv/bin/mkdocs" ]; then
  step "installing MkDocs into $venv (requirements.txt, hashes required)"
  rm -rf "$venv"
  python3 -m venv "$venv" || fail "python3 -m venv failed (apt-get install python3-venv)"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --require-hashes --only-binary=:all: \
    -r "$docs/requirements.txt" || { rm -rf "$venv"; fail "pip install of requirements.txt failed"; }
fi
if [ ! -d "$root/node_modules/typescript" ]; then
  step "npm ci (library: TypeDoc reads its types)"
  (cd "$root" && npm ci --prefer-offline --no-audit --no-fund --loglevel=error)
fi
step "npm ci (docs: TypeDoc)"
(cd "$docs" && npm ci --prefer-offline --no-audit --no-fund --loglevel=error)

# -- build ------------------------------------------------------------------------
src="$out/src"
rm -rf "$out"
mkdir -p "$src"
cp "$docs/mkdocs.yml" "$src/"
cp -r "$docs/content" "$src/content"
step "TypeDoc: the API reference from js/src/index.ts"
(cd "$docs" && npx typedoc --options typedoc.json --logLevel Warn --out "$src/content/api") ||
  fail "TypeDoc failed"
[ -s "$src/content/api/index.md" ] || fail "TypeDoc wrote no api/index.md"

# Not --quiet: it hides the warnings that --strict counts, and the build passes.
step "MkDocs build --strict"
"$venv/bin/mkdocs" build --strict -f "$src/mkdocs.yml" -d "$out/site" ||
  fail "the site does not build (a broken link or anchor is named above)"
pages="$(find "$out/site" -name '*.html' | wc -l)"
echo "site: $pages HTML pages in $out/site ($(find "$src/content/api" -name '*.md' | wc -l) from TypeDoc)"

step "link checks (node --test docs/test)"
status=0
MKDOCS="$venv/bin/mkdocs" DOCS_SRC="$src" node --test --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$out/links.tap" "$docs"/test/*.test.mjs || status=$?
awk '$1 == "#" && $2 == "pass" { p = $3 } $1 == "#" && $2 == "fail" { f = $3 }
  END { printf "docs links: %d passed, %d failed\n", p, f }' "$out/links.tap"
[ "$status" = 0 ] || fail "link check tests failed"

if [ "$samples" = 1 ]; then
  apps=("$cache"/scratch-apps/rn-*)
  [ -d "${apps[0]}" ] || fail "--samples: no scratch app in $cache/scratch-apps (run scripts/test-install.sh once)"
  for app in "${apps[@]}"; do
    step "samples of the pages in $(basename "$app")"
    node "$root/scripts/check-samples.mjs" --app "$app" "$docs"/content/*.md
  done
fi
echo "docs built in $((SECONDS - start)) s"
