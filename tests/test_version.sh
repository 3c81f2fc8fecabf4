#!/usr/bin/env bash
# moepager --version (and -V) print "moepager VERSION" with the project
# version from CMakeLists.txt, followed by " (git describe)" when the source
# is a git checkout and git is installed (read when cmake configured).
# Exit 0 pass, 1 fail, 77 when the CLI is not built.
set -u
BUILD=${MP_BUILD:-.}
SRC=${MP_SRC:-$(cd "$(dirname "$0")/.." && pwd)}
MP="$BUILD/moepager"
[ -x "$MP" ] || { echo "SKIP: $MP not built"; exit 77; }
fail=0
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }

want=$(sed -n 's/^project(moepager VERSION \([0-9.]*\).*/\1/p' "$SRC/CMakeLists.txt")
[ -n "$want" ] || bad "no project version in CMakeLists.txt"
v=$("$MP" --version) || bad "--version: exit $?"
[ "$("$MP" -V)" = "$v" ] || bad "-V differs from --version"
case "$v" in
  "moepager $want" | "moepager $want ("*")") ;;
  *) bad "--version: '$v' is not 'moepager $want[ (describe)]'" ;;
esac
if command -v git >/dev/null && git -C "$SRC" rev-parse --git-dir >/dev/null 2>&1; then
  echo "$v" | grep -Eq "^moepager $want \([0-9a-f]{7,}(-dirty)?\)$|^moepager $want \(.*-g[0-9a-f]+(-dirty)?\)$|^moepager $want \([^ ]+\)$" ||
    bad "--version in a git checkout has no git describe: '$v'"
fi
"$MP" --help | grep -q -- '--version' || bad "--help does not mention --version"
[ $fail -eq 0 ] && echo "test_version: ok ($v)"
[ $fail -eq 0 ]
