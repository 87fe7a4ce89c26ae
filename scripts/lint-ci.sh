#!/usr/bin/env bash
# Lints what cannot run here: the shell scripts (shellcheck, from Debian) and
# the GitHub workflows (actionlint, a Go module, pinned, cached under
# ~/.cache/s3bgu-ci). A step of scripts/test.sh; installs what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."

ACTIONLINT_VERSION=v1.7.7
cache="${S3BGU_CI_CACHE:-$HOME/.cache/s3bgu-ci}"
if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi

apt_install() {
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "$@"
}

command -v shellcheck >/dev/null 2>&1 || apt_install shellcheck
# Every script of the repository: scripts/, the bindings', android/ and ios/
# helpers if any, and the CI entry point.
mapfile -t scripts < <(git ls-files -co --exclude-standard -- '*.sh' .ci/run | sort -u)
[ ${#scripts[@]} -gt 0 ] || { echo "lint-ci: no shell script found" >&2; exit 1; }
shellcheck "${scripts[@]}"
echo "shellcheck: ${#scripts[@]} scripts clean ($(shellcheck --version | awk '/^version:/ {print $2}'))"

actionlint="$cache/bin/actionlint-$ACTIONLINT_VERSION"
if [ ! -x "$actionlint" ]; then
  command -v go >/dev/null 2>&1 || apt_install golang-go
  mkdir -p "$cache/bin"
  GOBIN="$cache/bin.tmp" go install "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION"
  mv "$cache/bin.tmp/actionlint" "$actionlint"
  rmdir "$cache/bin.tmp" 2>/dev/null || true
fi
mapfile -t workflows < <(find .github/workflows -name '*.yml' -o -name '*.yaml' | sort)
[ ${#workflows[@]} -gt 0 ] || { echo "lint-ci: no workflow found" >&2; exit 1; }
# actionlint also runs shellcheck on every `run:` block.
"$actionlint" "${workflows[@]}"
echo "actionlint $ACTIONLINT_VERSION: ${#workflows[@]} workflows clean"
