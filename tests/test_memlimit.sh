#!/usr/bin/env bash
# A model 3.5 times larger than a hard memory limit runs to completion under
# that limit. A llama-moe q8_0 model of 222 MB (8 layers, 16 experts of
# 1.6 MiB, top-2; 7.7 MiB resident) is evicted from the page cache, then
# `moepager logits --mem 64M` runs in a memory cgroup limited to 64 MiB
# (tests/helpers/cgroup_run.sh). It must exit 0 (no OOM kill), print a plan
# whose total is within the limit, and give the same logits and gen_ids as an
# unlimited run with everything mapped; the same with the pread backend.
# First the helper itself is checked: an allocation larger than the limit
# must be OOM-killed, or the limit proves nothing.
# Exit 0 pass, 1 fail, 77 when no memory cgroup is writable here, the tools
# are not built, or the build uses AddressSanitizer (its shadow memory and
# quarantine make RSS limits meaningless).
set -u

BUILD=${MP_BUILD:-.}
SRC=${MP_SRC:-..}
MP="$BUILD/moepager"
GEN="$BUILD/mp-gen"
CGRUN="$SRC/tests/helpers/cgroup_run.sh"
[ -x "$MP" ] || { echo "SKIP: $MP not built"; exit 77; }
[ -x "$GEN" ] || { echo "SKIP: $GEN not built"; exit 77; }
if grep -qs '^MP_SANITIZE:BOOL=ON' "$BUILD/CMakeCache.txt" ||
   nm "$MP" 2>/dev/null | grep -q ' __asan_init'; then
  echo "SKIP: AddressSanitizer build: memory limits do not apply to ASan's shadow memory"
  exit 77
fi

LIMIT=64M
LIMIT_B=$((64 * 1024 * 1024))
OUT="$BUILD/memlimit-test"
rm -rf "$OUT" && mkdir -p "$OUT" || exit 1

fail=0
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }

. "$SRC/tests/helpers/memlimit.sh"
memlimit_probe

M="$OUT/big.gguf"
"$GEN" --arch llama-moe --type q8_0 --n-embd 512 --n-ff 1024 --n-layer 8 --n-expert 16 \
  --n-expert-used 2 --n-vocab 1000 --seed 5 -q -o "$M" || { echo "FAIL: mp-gen"; exit 1; }
size=$(stat -c %s "$M")
[ "$size" -gt $((3 * LIMIT_B)) ] || bad "the model ($size bytes) is not 3x the limit"

IDS=1,$(seq -s, 300 315)
NGEN=8

# limited TAG [opts]: cold run of `logits --mem LIMIT` under the limit.
limited() {
  local tag=$1
  shift
  timeout 300 bash "$CGRUN" "$LIMIT" --evict "$M" -- \
    "$MP" logits -m "$M" --ids "$IDS" -n "$NGEN" -t 1 -o "$OUT/$tag.f32" --mem "$LIMIT" "$@" \
    >"$OUT/$tag.log" 2>&1
  local rc=$?
  local log="$OUT/$tag.log"
  memlimit_check "$tag" $rc "$log" || return
  grep -q '^cgroup: ' "$log" || bad "$tag: no cgroup report"
  echo "$tag: $(grep '^cgroup: ' "$log"); $(grep -o '[0-9.]* MB read' "$log")"
}

limited lim
limited lim-pread --io pread

# The unlimited reference: every weight mapped (--mmap: a model that fits
# is otherwise read into RAM).
timeout 300 "$MP" logits -m "$M" --ids "$IDS" -n "$NGEN" -t 1 -o "$OUT/ref.f32" --mmap >"$OUT/ref.log" 2>&1 ||
  bad "unlimited run failed: $(tail -2 "$OUT/ref.log")"
grep -q 'memory plan: all weights mapped' "$OUT/ref.log" || bad "the unlimited run is not the mapped one"
ref_ids=$(sed -n 's/^gen_ids: //p' "$OUT/ref.log")
[ -n "$ref_ids" ] || bad "no gen_ids in the unlimited run"
for tag in lim lim-pread; do
  [ -f "$OUT/$tag.f32" ] || continue
  cmp -s "$OUT/ref.f32" "$OUT/$tag.f32" || bad "$tag: logits differ from the unlimited run"
  ids=$(sed -n 's/^gen_ids: //p' "$OUT/$tag.log")
  [ "$ids" = "$ref_ids" ] || bad "$tag: gen_ids '$ids' != '$ref_ids'"
done

if [ "$fail" -ne 0 ]; then
  echo "$fail failure(s); logs in $OUT"
  exit 1
fi
rm -rf "$OUT"
echo "test_memlimit: ok"
exit 0
