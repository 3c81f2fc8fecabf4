#!/usr/bin/env bash
# The library boundary, checked on the source:
#  - the library (everything under src/ but src/cli/) never prints and never
#    exits: no printf/puts/putchar/perror, no stdout/stderr, no exit/_exit/
#    abort calls (asserts are programmer errors and stay); messages go to
#    mp_err, notes and the log callback (fprintf to a FILE the caller named,
#    like a trace file, is fine);
#  - the command line (src/cli/) includes only the public headers
#    (moepager/*.h) and its own cli/ headers. (The build enforces this too:
#    src/ is not an include directory of the moepager target.)
# Exit 0 pass, 1 fail.
set -u
SRC=${MP_SRC:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$SRC" || exit 1
fail=0
hits=$(grep -rnE '(^|[^_a-zA-Z0-9.>])(printf|puts|putchar|perror|exit|_exit|abort)[[:space:]]*\(|\b(stdout|stderr)\b' \
  --include='*.c' --include='*.h' src | grep -v '^src/cli/' | grep -vE '^[^:]+:[0-9]+:[[:space:]]*(/\*|\*)' |
  grep -vE '__attribute__\(\(format\(printf')
if [ -n "$hits" ]; then
  echo "FAIL: the library prints or exits (route it through mp_err / the log callback):"
  echo "$hits"
  fail=1
fi
inc=$(grep -rn '#include "' src/cli | grep -vE '#include "(moepager/[a-z_]+\.h|cli\.h|bench_internal\.h|serve_request\.h)"')
if [ -n "$inc" ]; then
  echo "FAIL: src/cli includes internal headers (use include/moepager/moepager.h):"
  echo "$inc"
  fail=1
fi
[ $fail -eq 0 ] && echo "test_api_boundary: ok"
exit $fail
