# tools/check_layering.sh on small made-up trees: it passes a tree whose includes all
# point down, and fails, naming file, line and the two components, on each kind of
# violation: an upward include, one outside the component's row, one through "../",
# the CLI reaching past the public API, a public header including src/, a src/ folder
# missing from the table. (check_layering, registered beside this test, runs the
# script on the real tree.)
set -u
S=${MP_SRC:-..}
CHECK="$S/tools/check_layering.sh"
T=$(mktemp -d "${TMPDIR:-/tmp}/mp-layering.XXXXXX")
trap 'rm -rf "$T"' EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }

# a clean tree: each include points down the table
mk() { mkdir -p "$(dirname "$T/$1")" && printf '%s\n' "${@:2}" >"$T/$1"; }
mk include/moepager/status.h '#include <stdint.h>'
mk src/common/err.h '#include "moepager/status.h"' '#include <sys/types.h>'
mk src/kernels/kernels.c '#include "common/err.h"' '#include "kernels.h"'
mk src/io/io.c '#include "common/err.h"'
mk src/cache/cache.c '#include "io/io.h"' '#include "common/err.h"'
mk src/runtime/session.c '#include "model/model.h"' '#include "cache/cache.h"' '#include <moepager/status.h>'
mk src/cli/main.c '#include "moepager/status.h"' '#include "cli.h"' '#include "cli/cli.h"'
out=$(bash "$CHECK" "$T" 2>&1) || bad "clean tree refused: $out"
echo "$out" | grep -q '^check_layering: ok' || bad "clean tree: no ok line: $out"

# expect LINE_REGEX: the check fails and prints a line matching it
expect() {
    out=$(bash "$CHECK" "$T" 2>&1) && { bad "accepted: $1"; return; }
    echo "$out" | grep -qE "$1" || bad "no line matching '$1' in: $out"
}
mk src/io/io.c '#include "common/err.h"' '' '#include "cache/cache.h"'
expect '^src/io/io\.c:3: component io includes cache \(upward\)$'
mk src/io/io.c '#include "common/err.h"'

mk src/kernels/quants.c '#include <gguf/gguf.h>'
expect '^src/kernels/quants\.c:1: component kernels includes gguf \(not allowed: kernels may include only common\)$'
rm "$T/src/kernels/quants.c"

mk src/cache/policy.h '#  include "../runtime/plan.h"'
expect '^src/cache/policy\.h:1: component cache includes runtime \(upward\)$'
rm "$T/src/cache/policy.h"

mk src/cli/cmd_run.c '#include "moepager/status.h"' '#include "runtime/session.h"'
expect '^src/cli/cmd_run\.c:2: component cli includes runtime \(past the public API'
rm "$T/src/cli/cmd_run.c"

mk include/moepager/moepager.h '#include "moepager/status.h"' '#include "common/err.h"'
expect '^include/moepager/moepager\.h:2: public header includes src/common'
rm "$T/include/moepager/moepager.h"

mkdir -p "$T/src/unlisted" && mk src/unlisted/unlisted.c '#include "common/err.h"'
expect '^src/unlisted: component unlisted is not in the layering table'
rm -r "$T/src/unlisted"

# and clean again after all that
out=$(bash "$CHECK" "$T" 2>&1) || bad "restored tree refused: $out"
[ $fail = 0 ] && echo "test_check_layering: ok"
exit $fail
