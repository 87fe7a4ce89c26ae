#!/usr/bin/env bash
# Parses every file in ios/ (Swift, Objective-C++, the uniffi header and
# module map) with pinned tree-sitter grammars and fails on a syntax error.
# A parse, not a compile: there is no Swift toolchain or iOS SDK here, so
# types, API names and availability are NOT checked (README, iOS section).
# Needs python3 with venv; installs the grammars from PyPI into a cache.
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${S3BGU_IOS_SYNTAX_VENV:-$HOME/.cache/s3bgu/ios-syntax-venv}"
pins=(tree-sitter==0.26.1 tree-sitter-swift==0.7.4 tree-sitter-objc==3.0.2)
stamp="$venv/.pins"
if ! python3 -m venv --help >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq python3-venv
fi
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "${pins[*]}" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${pins[@]}"
  echo "${pins[*]}" >"$stamp"
fi
"$venv/bin/python" scripts/ios-syntax-check.py ios
