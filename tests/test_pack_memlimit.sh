#!/usr/bin/env bash
# A pack more than 3 times larger than a hard memory limit runs to completion
# under that limit, through the expert cache (io_uring and O_DIRECT into cache
# slots, each block checked and, for lz4 blocks, decompressed in its slot),
# with logits and gen_ids identical to the unconstrained run of the GGUF it
# was packed from. As test_memlimit.sh does for a GGUF: a llama-moe q8_0 model
# (12 layers, 16 experts of 1.6 MiB, top-2) made compressible in its odd
# experts (mp-compressible), so the pack holds both lz4 and raw blocks, is
# evicted from the page cache, then `moepager logits --mem 64M` runs in a
# memory cgroup limited to 64 MiB (tests/helpers/cgroup_run.sh). It must exit
# 0 (no OOM kill), print a plan whose total is within the limit, stream
# experts through the cache (not mapped), and give the GGUF's logits bit for
# bit; the same with the pread backend. A pack without a budget holds every
# expert in the cache and gives the same logits. First the helper itself is
# checked: an allocation larger than the limit must be OOM-killed, or the
# limit proves nothing.
# Exit 0 pass, 1 fail, 77 when no memory cgroup is writable here or the tools
# are not built. An AddressSanitizer build runs everything but the cgroup
# (ASan's shadow memory and quarantine make RSS limits meaningless).
set -u

BUILD=${MP_BUILD:-.}
SRC=${MP_SRC:-..}
MP="$BUILD/moepager"
GEN="$BUILD/mp-gen"
COMP="$BUILD/mp-compressible"
CGRUN="$SRC/tests/helpers/cgroup_run.sh"
for t in "$MP" "$GEN" "$COMP"; do
  [ -x "$t" ] || { echo "SKIP: $t not built"; exit 77; }
done
# Under AddressSanitizer the runs go without the cgroup (its shadow memory
# and quarantine make RSS limits meaningless) but with the same --mem, so
# ASan still checks the cache path of packs: reads, verify, lz4 in place.
asan=0
if grep -qs '^MP_SANITIZE:BOOL=ON' "$BUILD/CMakeCache.txt" ||
   nm "$MP" 2>/dev/null | grep -q ' __asan_init'; then
  asan=1
fi

LIMIT=64M
LIMIT_B=$((64 * 1024 * 1024))
OUT="$BUILD/pack-memlimit-test"
rm -rf "$OUT" && mkdir -p "$OUT" || exit 1

fail=0
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }

# The limit bites: dd touches a 128 MiB buffer.
. "$SRC/tests/helpers/memlimit.sh"
if [ $asan = 0 ]; then
  memlimit_probe
else
  echo "AddressSanitizer build: the --mem runs go without the cgroup limit"
fi

G="$OUT/big.gguf"
M="$OUT/big.moepack"
"$GEN" --arch llama-moe --type q8_0 --n-embd 512 --n-ff 1024 --n-layer 12 --n-expert 16 \
  --n-expert-used 2 --n-vocab 1000 --seed 5 -q -o "$OUT/random.gguf" || { echo "FAIL: mp-gen"; exit 1; }
"$COMP" "$OUT/random.gguf" "$G" || { echo "FAIL: mp-compressible"; exit 1; }
rm -f "$OUT/random.gguf"
"$MP" pack "$G" -o "$M" -t 2 -q >"$OUT/pack.log" 2>&1 || { echo "FAIL: pack: $(cat "$OUT/pack.log")"; exit 1; }
# "experts: 192 blocks, 96 lz4-compressed, ...": both kinds of block
blocks=$(sed -n 's/^experts: \([0-9]*\) blocks, \([0-9]*\) lz4-compressed.*/\1 \2/p' "$OUT/pack.log")
read -r n_blocks n_lz4 <<<"$blocks"
[ -n "${n_lz4:-}" ] && [ "$n_lz4" -gt 0 ] && [ "$n_lz4" -lt "$n_blocks" ] ||
  bad "the pack should hold lz4 and raw blocks: $(grep '^experts:' "$OUT/pack.log")"
size=$(stat -c %s "$M")
[ "$size" -gt $((3 * LIMIT_B)) ] || bad "the pack ($size bytes) is not 3x the limit"

IDS=1,$(seq -s, 300 315)
NGEN=8

# The reference: the GGUF without a budget, every weight mapped (--mmap).
timeout 300 "$MP" logits -m "$G" --ids "$IDS" -n "$NGEN" -t 1 -o "$OUT/ref.f32" --mmap >"$OUT/ref.log" 2>&1 ||
  bad "unlimited GGUF run failed: $(tail -2 "$OUT/ref.log")"
grep -q 'memory plan: all weights mapped' "$OUT/ref.log" || bad "the unlimited GGUF run is not the mapped one"
ref_ids=$(sed -n 's/^gen_ids: //p' "$OUT/ref.log")
[ -n "$ref_ids" ] || bad "no gen_ids in the unlimited run"

# same TAG: logits and gen_ids of run TAG equal the reference's.
same() {
  local tag=$1
  [ -f "$OUT/$tag.f32" ] || return
  cmp -s "$OUT/ref.f32" "$OUT/$tag.f32" || bad "$tag: logits differ from the unlimited GGUF run"
  local ids
  ids=$(sed -n 's/^gen_ids: //p' "$OUT/$tag.log")
  [ "$ids" = "$ref_ids" ] || bad "$tag: gen_ids '$ids' != '$ref_ids'"
}

# limited TAG [opts]: cold run of `logits --mem LIMIT` on the pack under the limit.
limited() {
  local tag=$1
  shift
  local wrap=(bash "$CGRUN" "$LIMIT" --evict "$M" --)
  [ $asan = 1 ] && wrap=()
  timeout 300 ${wrap[@]+"${wrap[@]}"} \
    "$MP" logits -m "$M" --ids "$IDS" -n "$NGEN" -t 1 -o "$OUT/$tag.f32" --mem "$LIMIT" "$@" \
    >"$OUT/$tag.log" 2>&1
  local rc=$?
  local log="$OUT/$tag.log"
  memlimit_check "$tag" $rc "$log" || return
  grep -q 'experts stream from .*big.moepack' "$log" || bad "$tag: the pack is not read by the cache's io"
  # the cache missed and read (a cache of a few slots cannot hold 192 experts)
  grep -q 'expert cache: .* [1-9][0-9]* misses' "$log" || bad "$tag: no cache misses: $(grep -m1 '^expert cache' "$log")"
  [ $asan = 1 ] || grep -q '^cgroup: ' "$log" || bad "$tag: no cgroup report"
  echo "$tag: $(grep '^cgroup: ' "$log"); $(grep -o '[0-9.]* MB read' "$log")"
  same "$tag"
}

limited lim
limited lim-pread --io pread

# A pack without a budget: a cache of every expert, filled at start.
timeout 300 "$MP" logits -m "$M" --ids "$IDS" -n "$NGEN" -t 1 -o "$OUT/all.f32" >"$OUT/all.log" 2>&1 ||
  bad "unlimited pack run failed: $(tail -2 "$OUT/all.log")"
grep -q "memory plan: .*expert cache .*($n_blocks slots" "$OUT/all.log" ||
  bad "the unlimited pack run does not cache every expert: $(grep 'memory plan' "$OUT/all.log")"
grep -q 'the cache holds every expert: preloaded' "$OUT/all.log" || bad "the unlimited pack run was not preloaded"
same all

if [ "$fail" -ne 0 ]; then
  echo "$fail failure(s); logs in $OUT"
  exit 1
fi
rm -rf "$OUT"
echo "test_pack_memlimit: ok"
exit 0
