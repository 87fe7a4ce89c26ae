# shellcheck shell=bash
# Sourced by run.sh and compile-floor.sh (needs $m2, the local Maven repository).
# artifact group:artifact:version[:type[:classifier]] prints the file's path in
# $m2, fetching that one file from Maven Central the first time (not
# transitively: react-android's own dependency tree is not all there).
artifact() {
  : "${m2:?the caller sets m2}"
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
