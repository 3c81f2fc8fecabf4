#!/usr/bin/env bash
# Expert offloading gives exactly the all-in-RAM output. For a llama-moe
# (q8_0), a qwen3moe (q4_K) and an olmoe (f16) model, `moepager logits` on a
# 64-token prompt with 16 greedy tokens writes byte-identical logits and the
# same gen_ids whether the whole model is mapped or experts stream through a
# cache of k = n_expert_used experts per layer, k+1, all of them, or exactly
# k slots in all (the planner's minimum, via --cache-size); with the pread
# backend, the lru policy, a copy on tmpfs (buffered fallback where O_DIRECT
# is refused, announced), forced buffered reads, and injected short reads,
# EAGAIN and delays. A permanent fault (eio_from) stops the run with one
# error line naming the file, layer, expert and offset, without hanging; an
# impossible --mem is refused with "need at least"; a malformed size is a
# clear error. The stats line reports I/O busy time and MB/s while busy.
# Exit 0 pass, 1 fail, 77 when the tools are not built.
set -u

BUILD=${MP_BUILD:-.}
MP="$BUILD/moepager"
GEN="$BUILD/mp-gen"
[ -x "$MP" ] || { echo "SKIP: $MP not built"; exit 77; }
[ -x "$GEN" ] || { echo "SKIP: $GEN not built"; exit 77; }
OUT="$BUILD/offload-test"
rm -rf "$OUT" && mkdir -p "$OUT" || exit 1
SHM=""
cleanup() { [ -n "$SHM" ] && rm -f "$SHM"; }
trap cleanup EXIT

fail=0
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }

IDS=$(seq -s, 1 64)
NGEN=16
K=2      # n_expert_used of every model below
NEXP=8
TO=120   # seconds per run: generous for sanitizer builds; only a hang hits it
THREADS=1

# name | mp-gen options
MODELS=(
  "llama-moe-q8_0|--arch llama-moe --type q8_0 --n-embd 256 --n-ff 256"
  "qwen3moe-q4_K|--arch qwen3moe --type q4_K --n-embd 256 --n-head 2 --n-head-kv 1 --head-dim 128 --n-ff 512 --n-ff-exp 256"
  "olmoe-f16|--arch olmoe --type f16 --n-embd 256 --n-ff 256 --n-head 4 --n-head-kv 4"
)

# run TAG MODEL [opts...]: logits into $OUT/TAG.f32, stdout+stderr into
# $OUT/TAG.log; returns moepager's exit status.
run() {
  local tag=$1 model=$2
  shift 2
  timeout "$TO" "$MP" logits -m "$model" --ids "$IDS" -n "$NGEN" -t "$THREADS" -o "$OUT/$tag.f32" "$@" \
    >"$OUT/$tag.log" 2>&1
}

gen_ids() { sed -n 's/^gen_ids: //p' "$OUT/$1.log"; }

# same REF TAG WHAT: TAG's logits and gen_ids equal REF's.
same() {
  local ref=$1 tag=$2 what=$3
  if ! cmp -s "$OUT/$ref.f32" "$OUT/$tag.f32"; then
    bad "$what: logits differ from the mapped run"
  elif [ "$(gen_ids "$ref")" != "$(gen_ids "$tag")" ] || [ -z "$(gen_ids "$tag")" ]; then
    bad "$what: gen_ids '$(gen_ids "$tag")' != '$(gen_ids "$ref")'"
  fi
}

# streamed TAG WHAT MODEL [opts]: runs, must exit 0, stream experts (plan with
# an expert cache), print the stats line, and match the mapped run.
streamed() {
  local tag=$1 what=$2 model=$3
  shift 3
  run "$tag" "$model" "$@"
  local rc=$?
  if [ $rc -ne 0 ]; then
    bad "$what: exit $rc: $(grep -m1 'error' "$OUT/$tag.log")"
    return 1
  fi
  grep -q '^moepager: memory plan: .*expert cache' "$OUT/$tag.log" || bad "$what: no expert cache in the plan"
  # Expert bytes were read, so the device was busy for a measurable time --
  # unless the cache holds every expert: then they were all read at start
  # (the "preloaded" line) and the run itself reads nothing.
  local st
  st=$(grep '^expert cache: ' "$OUT/$tag.log")
  if grep -q '^moepager: the cache holds every expert: preloaded [0-9.]* MB' "$OUT/$tag.log"; then
    [[ $st =~ 100\.0%\ hits ]] || bad "$what: preloaded cache but not all hits: '$st'"
  elif [[ ! $st =~ ([0-9.]+)\ MB\ read.*I/O\ busy\ ([0-9.]+)\ s,\ ([0-9.]+)\ MB/s\ while\ busy ]]; then
    bad "$what: no stats line with I/O busy time: '$st'"
  elif ! awk -v mb="${BASH_REMATCH[1]}" -v r="${BASH_REMATCH[3]}" 'BEGIN { exit !(mb > 0 && r > 0) }'; then
    bad "$what: stats line reads nothing or no busy time: '$st'"
  fi
  same "${tag%%.*}.mapped" "$tag" "$what"
}

for m in "${MODELS[@]}"; do
  name=${m%%|*}
  opts=${m#*|}
  f="$OUT/$name.gguf"
  # shellcheck disable=SC2086
  "$GEN" $opts --n-layer 4 --n-expert $NEXP --n-expert-used $K --seed 11 -q -o "$f" ||
    { bad "$name: mp-gen $opts"; continue; }

  run "$name.mapped" "$f" --mmap || { bad "$name: mapped run failed: $(tail -2 "$OUT/$name.mapped.log")"; continue; }
  grep -q 'memory plan: all weights mapped' "$OUT/$name.mapped.log" || bad "$name: the --mmap run is not the mapped one"
  # no flag: the model fits, so every weight is read into RAM (a slot per
  # expert, repacked): the same logits
  run "$name.loaded" "$f" || bad "$name: default run failed: $(tail -2 "$OUT/$name.loaded.log")"
  grep -q 'every weight read into RAM' "$OUT/$name.loaded.log" || bad "$name: the default run did not read the model into RAM"
  same "$name.mapped" "$name.loaded" "$name: default (read into RAM)"
  [ -n "$(gen_ids "$name.mapped")" ] || bad "$name: no gen_ids in the mapped run"

  streamed "$name.k" "$name cache-experts $K" "$f" --cache-experts $K
  streamed "$name.k1" "$name cache-experts $((K + 1))" "$f" --cache-experts $((K + 1))
  streamed "$name.all" "$name cache-experts $NEXP" "$f" --cache-experts $NEXP

  # Exactly k slots for the whole model (the planner's minimum): the slot
  # size comes from the plan line "(N slots of S KiB, ...".
  slot_kib=$(sed -n 's/.*expert cache .* slots of \([0-9]*\) KiB.*/\1/p' "$OUT/$name.k.log")
  if [ -z "$slot_kib" ]; then
    bad "$name: no slot size (in KiB) in the plan: $(grep 'memory plan' "$OUT/$name.k.log")"
  else
    streamed "$name.min" "$name cache-size $K slots" "$f" --cache-size "$((K * slot_kib))K"
    grep -q "($K slots of" "$OUT/$name.min.log" || bad "$name: --cache-size of $K slots: $(grep 'memory plan' "$OUT/$name.min.log")"
  fi

  streamed "$name.pread" "$name --io pread" "$f" --cache-experts $K --io pread
  grep -q 'via pread' "$OUT/$name.pread.log" || bad "$name: --io pread did not use pread"
  streamed "$name.lru" "$name --policy lru" "$f" --cache-experts $K --policy lru
  streamed "$name.buffered" "$name refuse_direct" "$f" --cache-experts $K --io-fault refuse_direct
  grep -q 'refuses O_DIRECT' "$OUT/$name.buffered.log" || bad "$name: buffered fallback not announced"
  streamed "$name.faults" "$name short/eagain/delay faults" "$f" --cache-experts $K \
    --io-fault seed=3,short=0.3,eagain=0.3,delay=0.2,delay_us=200
  streamed "$name.faults-pread" "$name faults over pread" "$f" --cache-experts $K --io pread \
    --io-fault seed=5,short=0.3,eagain=0.3,delay=0.2,delay_us=200
done

# Two compute threads (the split of the work must not depend on where the
# experts are).
f="$OUT/llama-moe-q8_0.gguf"
if [ -f "$f" ]; then
  THREADS=2
  run t2.mapped "$f" --mmap || bad "-t 2 mapped run failed"
  streamed t2.k "-t 2 cache-experts $K" "$f" --cache-experts $K
  THREADS=1
fi

f="$OUT/qwen3moe-q4_K.gguf"
if [ -f "$f" ] && [ -f "$OUT/qwen3moe-q4_K.mapped.f32" ]; then
  # tmpfs: kernels before 6.6 refuse O_DIRECT there (then the fallback must
  # be announced); newer ones accept it. Either way the output is the same.
  if [ -d /dev/shm ] && [ -w /dev/shm ]; then
    SHM=/dev/shm/mp-test-offload.$$.gguf
    if cp "$f" "$SHM"; then
      streamed "qwen3moe-q4_K.shm" "copy on /dev/shm" "$SHM" --cache-experts $K
      if grep -q 'via .*(buffered)' "$OUT/qwen3moe-q4_K.shm.log"; then
        grep -q 'refuses O_DIRECT' "$OUT/qwen3moe-q4_K.shm.log" || bad "/dev/shm: buffered without the announcement"
      else
        echo "note: tmpfs accepts O_DIRECT on this kernel; the fallback is covered by refuse_direct"
      fi
    fi
    rm -f "$SHM"
    SHM=""
  fi

  # A permanent fault: exit nonzero, in time, with one error line naming
  # the file, layer, expert and offset.
  for io in auto pread; do
    tag=qwen3moe-q4_K.eio-$io
    run "$tag" "$f" --cache-experts $K --io "$io" --io-fault eio_from=5
    rc=$?
    if [ $rc -eq 0 ]; then
      bad "eio_from=5 ($io): exit 0"
    elif [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
      bad "eio_from=5 ($io): hung (timeout)"
    elif [ $rc -gt 128 ]; then
      bad "eio_from=5 ($io): killed by signal $((rc - 128))"
    else
      n=$(grep -c '^error:' "$OUT/$tag.log")
      line=$(grep '^error:' "$OUT/$tag.log")
      [ "$n" -eq 1 ] || bad "eio_from=5 ($io): $n error lines"
      [[ $line == *"$f"*"layer "[0-9]*"expert "[0-9]*"offset "[0-9]* ]] ||
        bad "eio_from=5 ($io): the error does not name file, layer, expert, offset: $line"
      grep -q '^gen_ids:' "$OUT/$tag.log" && bad "eio_from=5 ($io): printed gen_ids after an I/O error"
    fi
  done

  # Impossible and malformed budgets.
  run q.mem1m "$f" --mem 1M
  rc=$?
  [ $rc -ne 0 ] && [ $rc -lt 124 ] || bad "--mem 1M: exit $rc"
  grep -q '^error: .*need at least' "$OUT/q.mem1m.log" || bad "--mem 1M: no 'need at least': $(cat "$OUT/q.mem1m.log")"
  for a in "--mem 12Q" "--mem abc" "--cache-size 12Q" "--mem -5M" "--cache-experts 0"; do
    # shellcheck disable=SC2086
    run q.badsize "$f" $a
    rc=$?
    [ $rc -ne 0 ] && [ $rc -lt 124 ] || bad "$a: exit $rc"
    grep -q "^error: ${a%% *}" "$OUT/q.badsize.log" || bad "$a: unclear message: $(head -2 "$OUT/q.badsize.log")"
  done
fi

if [ "$fail" -ne 0 ]; then
  echo "$fail failure(s); logs in $OUT"
  exit 1
fi
rm -rf "$OUT"
echo "test_offload: ok"
exit 0
