#!/usr/bin/env bash
# A budget by default (issue 9 item 7): with no budget flag, a model larger
# than its memory cgroup streams its experts instead of mapping the file.
# A llama-moe q8_0 model of 111 MB (4 layers, 16 experts of 1.6 MiB, top-2)
# is evicted from the page cache, then `moepager logits` runs with NO budget
# flag in a memory cgroup limited to 64 MiB (tests/helpers/cgroup_run.sh).
# It must exit 0 (no OOM kill), print a plan that streams experts within the
# limit less the margin ("budget 56 MiB, from what this machine allows") and
# a note naming the cgroup limit and the --mem it chose, and give the same
# logits and gen_ids as the unlimited run with everything mapped; an explicit
# `--mem` of the chosen figure in the same cgroup gives the same plan and
# logits. Outside the cgroup (where the model fits), no flag reads every
# weight into RAM (a slot per expert) and says so; --mmap and --mem 0 print
# the old plan line (all weights mapped) and no note; all give the same logits.
# The helper is checked first: an allocation above the limit must be
# OOM-killed, or the limit proves nothing.
# Exit 0 pass, 1 fail, 77 when no memory cgroup is writable here, the tools
# are not built, or the build uses AddressSanitizer (its shadow memory makes
# RSS limits meaningless).
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
# What the planner keeps of a 64 MiB limit: the margin is 1/8 of it
# (MP_PLAN_MARGIN_MIN_DIV, since 512 MiB would leave nothing): 56 MiB.
BUDGET_M=56
OUT="$BUILD/budget-auto-test"
rm -rf "$OUT" && mkdir -p "$OUT" || exit 1

fail=0
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }

. "$SRC/tests/helpers/memlimit.sh"
memlimit_probe

M="$OUT/moe.gguf"
"$GEN" --arch llama-moe --type q8_0 --n-embd 512 --n-ff 1024 --n-layer 4 --n-expert 16 \
  --n-expert-used 2 --n-vocab 1000 --seed 9 -q -o "$M" || { echo "FAIL: mp-gen"; exit 1; }
size=$(stat -c %s "$M")
[ "$size" -gt $((LIMIT_B * 3 / 2)) ] || bad "the model ($size bytes) is not well above the limit"

IDS=1,$(seq -s, 300 315)
NGEN=8

plan_line() { grep -m1 '^moepager: memory plan:' "$OUT/$1.log"; }
gen_ids() { sed -n 's/^gen_ids: //p' "$OUT/$1.log"; }

# free TAG [opts]: a run outside any new cgroup.
free_run() {
  local tag=$1
  shift
  timeout 300 "$MP" logits -m "$M" --ids "$IDS" -n "$NGEN" -t 1 -o "$OUT/$tag.f32" "$@" >"$OUT/$tag.log" 2>&1 ||
    bad "$tag: exit $?: $(grep -m1 error "$OUT/$tag.log")"
}

# limited TAG [opts]: a cold run under the limit; must not be OOM-killed.
limited() {
  local tag=$1
  shift
  timeout 300 bash "$CGRUN" "$LIMIT" --evict "$M" -- \
    "$MP" logits -m "$M" --ids "$IDS" -n "$NGEN" -t 1 -o "$OUT/$tag.f32" "$@" >"$OUT/$tag.log" 2>&1
  local rc=$?
  if [ $rc -eq 137 ] || grep -q 'oom_kill [1-9]' "$OUT/$tag.log"; then
    bad "$tag: OOM-killed under $LIMIT: $(grep -m1 '^cgroup:' "$OUT/$tag.log")"
  elif [ $rc -ne 0 ]; then
    bad "$tag: exit $rc: $(grep -m1 'error' "$OUT/$tag.log")"
  fi
}

# The reference: no flag, no limit. The model fits this machine, so every
# weight is read into RAM (a cache slot for every expert), and said.
free_run ref
ref_plan=$(plan_line ref)
echo "no flag, no limit: $ref_plan"
[[ $ref_plan == "moepager: memory plan: resident "*"expert cache"*"(64 slots "* ]] ||
  bad "the unlimited run does not hold every expert in RAM: $ref_plan"
grep -q '^moepager: plan: the model fits .*every weight read into RAM' "$OUT/ref.log" ||
  bad "the unlimited run does not say it reads the model into RAM: $(grep '^moepager: plan:' "$OUT/ref.log")"
[ -n "$(gen_ids ref)" ] || bad "no gen_ids in the unlimited run"

# --mmap and --mem 0: the old behaviour, every weight mapped, nothing announced
for flag in --mmap "--mem 0"; do
  tag=mmap${flag// /}
  # shellcheck disable=SC2086
  free_run "$tag" $flag
  [[ $(plan_line "$tag") == "moepager: memory plan: all weights mapped ("* ]] || bad "$flag: plan '$(plan_line "$tag")' is not mapped"
  grep -q '^moepager: plan:' "$OUT/$tag.log" && bad "$flag: a plan note"
  cmp -s "$OUT/ref.f32" "$OUT/$tag.f32" || bad "$flag: logits differ from the unlimited run"
done

# No flag under the limit: streamed, with the default budget.
limited auto
auto_plan=$(plan_line auto)
note=$(grep -m1 '^moepager: plan:' "$OUT/auto.log")
echo "no flag, $LIMIT cgroup: $auto_plan"
echo "no flag, $LIMIT cgroup: $note"
echo "no flag, $LIMIT cgroup: $(grep '^cgroup: ' "$OUT/auto.log")"
[[ $auto_plan == *"expert cache"*"(budget $BUDGET_M MiB, from what this machine allows)" ]] ||
  bad "no flag under $LIMIT: the plan does not stream with the default budget: $auto_plan"
[[ $note == "moepager: plan: the model needs "*" mapped; this machine allows $BUDGET_M MiB (cgroup limit 64 MiB less 8 MiB for the rest; MemAvailable "*"): streaming experts with --mem ${BUDGET_M}M (--mmap maps the whole file)" ]] ||
  bad "no flag under $LIMIT: the note does not say what was chosen and why: '$note'"
total=$(sed -n 's/^moepager: memory plan: .* = \([0-9.]*\) MiB (budget.*/\1/p' "$OUT/auto.log")
awk -v t="${total:-x}" -v b="$BUDGET_M" 'BEGIN { exit !(t + 0 == t && t <= b) }' ||
  bad "no flag under $LIMIT: plan total '$total' MiB is not within $BUDGET_M MiB"
grep -q '^expert cache: ' "$OUT/auto.log" || bad "no flag under $LIMIT: no expert cache statistics"

# The explicit --mem of the same figure: the same plan, the same output.
limited explicit --mem "${BUDGET_M}M"
want=${auto_plan%", from what this machine allows)"}")"
[ "$(plan_line explicit)" = "$want" ] ||
  bad "--mem ${BUDGET_M}M plans '$(plan_line explicit)', the default budget '$auto_plan'"
grep -q '^moepager: plan:' "$OUT/explicit.log" && bad "--mem ${BUDGET_M}M: a plan note"

for tag in auto explicit; do
  [ -f "$OUT/$tag.f32" ] || continue
  cmp -s "$OUT/ref.f32" "$OUT/$tag.f32" || bad "$tag: logits differ from the unlimited run"
  [ "$(gen_ids "$tag")" = "$(gen_ids ref)" ] || bad "$tag: gen_ids '$(gen_ids "$tag")' != '$(gen_ids ref)'"
done

if [ "$fail" -ne 0 ]; then
  echo "$fail failure(s); logs in $OUT"
  exit 1
fi
rm -rf "$OUT"
echo "test_budget_auto: ok"
exit 0
