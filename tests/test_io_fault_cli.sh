#!/usr/bin/env bash
# The io failure paths end a run cleanly (src/io, through the CLI): with
# experts streamed under --mem, an injected stall (--io-fault stall) and
# --io-timeout 1 make `moepager run` exit nonzero within a few seconds with
# exactly one line "error: FILE: no read completed for 1 s (layer L expert
# E, offset N)", on io_uring and on pread; a submit that fails part way
# (submit_fail) or starts nothing (submit_zero) ends it with one line
# naming file, layer, expert and offset; a late read within the timeout
# (stall_ms) only slows the run down; a bad --io-timeout is refused; the
# help lists the flag. Exit 0 pass, 1 fail, 77 when the tools are not built.
set -u

BUILD=${MP_BUILD:-.}
SRC=${MP_SRC:-..}
MP="$BUILD/moepager"
GEN="$BUILD/mp-gen"
VOCAB="$SRC/tests/data/vocab/ggml-vocab-llama-spm.gguf"
[ -x "$MP" ] || { echo "SKIP: $MP not built"; exit 77; }
[ -x "$GEN" ] || { echo "SKIP: $GEN not built"; exit 77; }
[ -f "$VOCAB" ] || { echo "SKIP: no $VOCAB"; exit 77; }
OUT="$BUILD/io-fault-cli-test"
rm -rf "$OUT" && mkdir -p "$OUT" || exit 1

fail=0
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }

M="$OUT/m.gguf"
"$GEN" --arch llama-moe --type q8_0 --n-embd 256 --n-ff 256 --n-layer 4 --n-expert 8 \
  --n-expert-used 2 --seed 11 -q --vocab "$VOCAB" -o "$M" || { echo "FAIL: mp-gen"; exit 1; }

# run TAG [opts...]: stdout into $OUT/TAG.out, stderr into $OUT/TAG.err,
# wall seconds into $OUT/TAG.s; returns moepager's exit status. A hang
# hits the 60 s timeout (generous for sanitizer builds).
run() {
  local tag=$1
  shift
  local t0 t1 rc
  t0=$(date +%s.%N)
  timeout 60 "$MP" run -m "$M" -p "hello world" -n 4 -t 1 --temp 0 "$@" >"$OUT/$tag.out" 2>"$OUT/$tag.err"
  rc=$?
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f\n", b - a }' >"$OUT/$tag.s"
  return $rc
}

# The smallest budget the planner accepts streams experts through a cache
# of a few slots.
run plan --mem 1M
MEM=$(sed -n 's/.*need at least \([0-9]*\)\.[0-9]* MiB.*/\1/p' "$OUT/plan.err")
[ -n "$MEM" ] || { echo "FAIL: no minimum budget in: $(cat "$OUT/plan.err")"; exit 1; }
MEM="$((MEM + 3))M"

run ok --mem "$MEM" --io-timeout 5 || bad "a healthy run with --io-timeout 5 failed: $(cat "$OUT/ok.err")"
grep -q 'expert cache' "$OUT/ok.err" || bad "--mem $MEM does not stream experts: $(grep 'memory plan' "$OUT/ok.err")"

# fails TAG WHAT PATTERN MAX_S opts...: exit nonzero (not a timeout or a
# signal) within MAX_S seconds, with one error line matching PATTERN.
fails() {
  local tag=$1 what=$2 pat=$3 max=$4
  shift 4
  run "$tag" "$@"
  local rc=$?
  if [ $rc -eq 0 ]; then
    bad "$what: exit 0"
  elif [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    bad "$what: hung (killed after 60 s)"
  elif [ $rc -gt 128 ]; then
    bad "$what: killed by signal $((rc - 128))"
  else
    local n line
    # sanitizer builds: a leak or UB on the failure path shows here
    grep -q 'Sanitizer\|runtime error' "$OUT/$tag.err" && bad "$what: sanitizer report: $(cat "$OUT/$tag.err")"
    [ $rc -eq 1 ] || bad "$what: exit $rc (want 1)"
    n=$(grep -c '^error:' "$OUT/$tag.err")
    line=$(grep '^error:' "$OUT/$tag.err")
    [ "$n" -eq 1 ] || bad "$what: $n error lines: $(cat "$OUT/$tag.err")"
    [[ $line =~ $pat ]] || bad "$what: '$line' does not match '$pat'"
    awk -v s="$(cat "$OUT/$tag.s")" -v m="$max" 'BEGIN { exit !(s < m) }' ||
      bad "$what: took $(cat "$OUT/$tag.s") s (limit $max s)"
  fi
}

Q=$(printf '%s' "$M" | sed 's/[][\.*^$+?(){}|]/\\&/g')
STALL="^error: $Q: no read completed for 1 s \(layer [0-9]+ expert [0-9]+, offset [0-9]+\)$"
NAMED="^error: $Q: layer [0-9]+ expert [0-9]+: read at offset [0-9]+: cannot start it: .+"
for io in auto pread; do
  fails "stall-$io" "stall ($io)" "$STALL" 10 --mem "$MEM" --io "$io" --io-fault stall --io-timeout 1
  fails "stallfrom-$io" "stall_from=20 ($io)" "$STALL" 10 --mem "$MEM" --io "$io" --io-fault stall_from=20 --io-timeout 1
  fails "sfail-$io" "submit_fail ($io)" "$NAMED" 10 --mem "$MEM" --io "$io" --io-fault submit_fail=3
  fails "szero-$io" "submit_zero ($io)" "$NAMED" 10 --mem "$MEM" --io "$io" --io-fault submit_zero
  # a read 300 ms late, well within the timeout: the run completes
  run "late-$io" --mem "$MEM" --io "$io" --io-fault stall=2,stall_ms=300 --io-timeout 5 ||
    bad "a late read within the timeout ($io) failed: $(cat "$OUT/late-$io.err")"
  cmp -s "$OUT/ok.out" "$OUT/late-$io.out" || bad "a late read ($io) changed the output"
done

# A device whose O_DIRECT reads need 64 KiB alignment (statx can say so):
# the planner counts the slot the cache makes (the run refuses a mismatch),
# so the plan's slot size grows to a multiple of 64 KiB and the output is
# unchanged.
run align --mem "$MEM" --io-fault align=65536 || bad "64 KiB io alignment: $(cat "$OUT/align.err")"
cmp -s "$OUT/ok.out" "$OUT/align.out" || bad "64 KiB io alignment changed the output"
slot=$(sed -n 's/.*slots of \([0-9.]*\) \([KM]i\{0,1\}B\).*/\1 \2/p' "$OUT/align.err" | head -1)
slot4k=$(sed -n 's/.*slots of \([0-9.]*\) \([KM]i\{0,1\}B\).*/\1 \2/p' "$OUT/ok.err" | head -1)
[ -n "$slot" ] && [ "$slot" != "$slot4k" ] ||
  bad "the plan's slot ($slot) does not follow the io alignment (4 KiB: $slot4k): $(grep 'memory plan' "$OUT/align.err")"

# A bad --io-timeout is refused; the help lists the flag.
for v in 0 abc -3; do
  run badto --mem "$MEM" --io-timeout "$v"
  rc=$?
  [ $rc -ne 0 ] && [ $rc -lt 124 ] || bad "--io-timeout $v: exit $rc"
  grep -q '^error: --io-timeout' "$OUT/badto.err" || bad "--io-timeout $v: unclear: $(cat "$OUT/badto.err")"
done
"$MP" run --help 2>&1 | grep -q -- '--io-timeout SECONDS' || bad "run --help does not list --io-timeout"

if [ "$fail" -ne 0 ]; then
  echo "$fail failure(s); logs in $OUT"
  exit 1
fi
rm -rf "$OUT"
echo "test_io_fault_cli: ok"
exit 0
