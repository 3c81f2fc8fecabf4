#!/usr/bin/env bash
# Engine speed against llama.cpp's llama-bench on the same file, whole model
# in RAM, same thread count. Usage:
#   bench/compare_llamacpp.sh MODEL.gguf [threads=2] [pp=512] [tg=128] [reps=3] [rounds=1]
# Each round runs moepager's bench_engine, then llama-bench, each with reps
# repetitions (llama-bench's defaults otherwise, repacking included). With
# rounds > 1 the two take turns that many times and a summary follows: the
# median of each engine's per-round means and their ratio, so that a machine
# whose speed drifts (a shared VM) weighs on both alike.
# Needs a built peer: $MP_PEER (default ../shared/peers/llamacpp) with
# build/llama-bench (its `make tools`), and this project's build/bench_engine.
set -euo pipefail
model=$1; t=${2:-2}; pp=${3:-512}; tg=${4:-128}; r=${5:-3}; rounds=${6:-1}
here=$(cd "$(dirname "$0")/.." && pwd)
peer=${MP_PEER:-$here/../shared/peers/llamacpp}
build=${MP_BUILD:-$here/build}
[ -x "$build/bench_engine" ] || { echo "compare_llamacpp.sh: no $build/bench_engine (build first)" >&2; exit 2; }
[ -x "$peer/build/llama-bench" ] || { echo "compare_llamacpp.sh: no $peer/build/llama-bench (MP_PEER)" >&2; exit 2; }
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for k in $(seq "$rounds"); do
  [ "$rounds" -gt 1 ] && echo "== round $k of $rounds"
  echo "== moepager ($model, $t threads)"
  out=$("$build/bench_engine" -m "$model" -p "$pp" -n "$tg" -r "$r" -t "$t")
  echo "$out"
  echo "$out" | awk -v k="$k" '/^(pp|tg)[0-9]+:/ { sub(":", "", $1); print "mp", k, $1, $2 }' >>"$log"
  echo "== llama.cpp llama-bench"
  out=$("$peer/build/llama-bench" -m "$model" -p "$pp" -n "$tg" -r "$r" -t "$t" -o md 2>/dev/null | grep -E "pp|tg|model")
  echo "$out"
  # | model | size | params | backend | threads | test | t/s |: the test and the mean before the '±'
  echo "$out" | awk -F'|' -v k="$k" '$(NF-2) ~ /(pp|tg)[0-9]+/ { gsub(/ /, "", $(NF-2)); split($(NF-1), v, "±");
    gsub(/ /, "", v[1]); print "llama", k, $(NF-2), v[1] }' >>"$log"
done
[ "$rounds" -gt 1 ] || exit 0
echo "== summary over $rounds rounds (median of the rounds' means, tok/s)"
python3 - "$log" <<'EOF'
import collections, statistics, sys
v = collections.defaultdict(list)
for line in open(sys.argv[1]):
    eng, _, test, x = line.split()
    v[(eng, test)].append(float(x))
for test in sorted({t for _, t in v}, key=lambda s: (s[:2] != "pp", s)):
    a, b = v.get(("mp", test), []), v.get(("llama", test), [])
    if not a or not b:
        continue
    ma, mb = statistics.median(a), statistics.median(b)
    print("%s: moepager %.2f  llama.cpp %.2f  ratio %.3f  (rounds: moepager %s; llama.cpp %s)" % (
        test, ma, mb, ma / mb, " ".join("%.1f" % x for x in a), " ".join("%.1f" % x for x in b)))
EOF
