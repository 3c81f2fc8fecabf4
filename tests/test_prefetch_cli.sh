#!/usr/bin/env bash
# Prefetching never changes the output. For a llama-moe (q8_0) and a qwen3moe
# (q4_K) model, 4 layers, `moepager logits` (64-token prompt, 16 greedy
# tokens) gives byte-identical logits and gen_ids with the whole model mapped
# and with experts streaming through a cache of k and k+1 experts per layer
# under every prefetch setting: none, lookahead d = 1, 2, 3, lookahead past
# the last layer (d = 8 on 4 layers), extra experts, gate-probability
# thresholds of 0 and 0.9 (the default is 0.5), and the oracle replaying
# a --trace-out of the same run. The oracle's trace must have one line per
# (token, MoE layer). Lookahead must actually prefetch (the stats line shows
# hits above the no-prefetch run's at k+1), and the oracle, which also knows
# the next token's first layers, must hit more often than lookahead. Exit 0 pass, 1 fail, 77 if the
# tools are not built.
set -u
BUILD=${MP_BUILD:-.}
MP="$BUILD/moepager"
GEN="$BUILD/mp-gen"
[ -x "$MP" ] || { echo "SKIP: $MP not built"; exit 77; }
[ -x "$GEN" ] || { echo "SKIP: $GEN not built"; exit 77; }
OUT="$BUILD/prefetch-test"
rm -rf "$OUT" && mkdir -p "$OUT" || exit 1
fail=0
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }
IDS=$(seq -s, 1 64)
TO=120

run() { # TAG MODEL opts...
  local tag=$1 model=$2
  shift 2
  timeout "$TO" "$MP" logits -m "$model" --ids "$IDS" -n 16 -t 1 -o "$OUT/$tag.f32" "$@" >"$OUT/$tag.log" 2>&1
}
hits() { sed -n 's/^expert cache: \([0-9.]*\)% hits.*/\1/p' "$OUT/$1.log"; }

for spec in "llama-moe|--arch llama-moe --type q8_0 --n-embd 256 --n-ff 256" \
            "qwen3moe|--arch qwen3moe --type q4_K --n-embd 256 --n-head 2 --n-head-kv 1 --head-dim 128 --n-ff 512 --n-ff-exp 256"; do
  name=${spec%%|*}
  model="$OUT/$name.gguf"
  # shellcheck disable=SC2086
  "$GEN" ${spec#*|} --n-layer 4 --n-expert 8 --n-expert-used 2 --seed 5 -q -o "$model" || { bad "$name: mp-gen failed"; continue; }
  run "$name-ref" "$model" || { bad "$name: mapped run failed"; cat "$OUT/$name-ref.log"; continue; }
  run "$name-trace" "$model" --cache-experts 2 --prefetch none --trace-out "$OUT/$name.jsonl" || bad "$name: --trace-out run failed"
  lines=$(wc -l <"$OUT/$name.jsonl")
  # 64 prompt tokens + 15 decoded (the 16th greedy token is never evaluated), 4 MoE layers
  [ "$lines" -eq $(((64 + 15) * 4)) ] || bad "$name: trace has $lines lines, expected $(((64 + 15) * 4))"
  for ce in 2 3; do
    for pf in "none" "lookahead --lookahead 1" "lookahead --lookahead 2" "lookahead --lookahead 3" \
              "lookahead --lookahead 8" "lookahead --lookahead 1 --prefetch-extra 2 --prefetch-min-prob 0" \
              "lookahead --lookahead 2 --prefetch-min-prob 0.9" "lookahead --lookahead 1 --prefetch-timing off" \
              "oracle --oracle-trace $OUT/$name.jsonl --lookahead 2"; do
      tag="$name-ce$ce-$(printf '%s' "$pf" | tr -c 'a-z0-9' '_' | cut -c1-40)"
      # shellcheck disable=SC2086
      if ! run "$tag" "$model" --cache-experts $ce --prefetch $pf; then
        bad "$tag: run failed"
        sed -n '1,5p' "$OUT/$tag.log"
        continue
      fi
      cmp -s "$OUT/$name-ref.f32" "$OUT/$tag.f32" || bad "$tag: logits differ from the mapped run"
      [ "$(grep '^gen_ids' "$OUT/$tag.log")" = "$(grep '^gen_ids' "$OUT/$name-ref.log")" ] || bad "$tag: gen_ids differ"
    done
  done
  # the hit rates with lookahead on for every token (the timing governor
  # may turn it off for some of these 15, whose speed is noise here)
  h0=$(hits "$name-ce3-none"); h1=$(hits "$name-ce3-lookahead___lookahead_1___prefetch_timin")
  echo "$name: hit rate at 3 experts/layer: none $h0%, lookahead d=1 $h1%"
  awk -v a="$h1" -v b="$h0" 'BEGIN { exit !(a > b) }' || bad "$name: lookahead did not raise the hit rate ($h0% -> $h1%)"
  # the statistics after a run: prompt and decode lines, and the per-layer table
  run "$name-stats" "$model" --cache-experts 3 --prefetch lookahead --prefetch-min-prob 0 --layer-stats ||
    bad "$name: --layer-stats run failed"
  python3 - "$OUT/$name-stats.log" <<'EOF' || bad "$name: statistics lines not as expected: $(grep -A6 '^experts, decode' "$OUT/$name-stats.log")"
import re, sys
log = open(sys.argv[1]).read()
dec = re.search(r"^experts, decode: 15 tokens, stall [0-9.]+ ms/token, [0-9]+% of the time waiting for I/O, "
                r"[0-9.]+ MB/token read; prefetch: ([0-9]+) loads, precision ([0-9.]+)%, in-time recall ([0-9.]+)%, "
                r"([0-9.]+) MB wasted \(([0-9]+) evicted unused\)$", log, re.M)
assert dec, "no decode line"
assert re.search(r"^experts, prompt: 64 tokens, ", log, re.M), "no prompt line"
table = log.split("decode per MoE layer:\n")[1].splitlines()[1:5]
rows = [l.split() for l in table]
assert [r[0] for r in rows] == ["0", "1", "2", "3"], table
assert sum(int(r[5]) for r in rows) == int(dec.group(1)), "per-layer prefetches do not add up to the decode line"
assert all(int(r[1]) == 15 * 2 for r in rows), "each layer: 15 decode tokens x 2 experts demanded"
EOF
  h2=$(hits "$(cd "$OUT" && ls "$name"-ce3-oracle*.log | sed 's/\.log$//')")
  echo "$name: oracle d=2 $h2%"
  # the oracle predicts perfectly, the next token's first layers included
  awk -v a="$h2" -v b="$h1" 'BEGIN { exit !(a > b) }' || bad "$name: the oracle's hit rate $h2% is not above lookahead's $h1%"
done
# bad thresholds: one clear error line, nonzero exit
for bad_p in 1.5 -0.1 abc; do
  if "$MP" logits -m "$OUT/llama-moe.gguf" --ids 1,2,3 --cache-experts 3 --prefetch-min-prob "$bad_p" \
       >"$OUT/badp.log" 2>&1; then
    bad "--prefetch-min-prob $bad_p was accepted"
  elif ! grep -q "^error: --prefetch-min-prob: " "$OUT/badp.log"; then
    bad "--prefetch-min-prob $bad_p: no clear error: $(head -c 200 "$OUT/badp.log")"
  fi
done
for bad_v in maybe 1 ""; do
  if "$MP" logits -m "$OUT/llama-moe.gguf" --ids 1,2,3 --cache-experts 3 --prefetch-timing "$bad_v" \
       >"$OUT/badt.log" 2>&1; then
    bad "--prefetch-timing '$bad_v' was accepted"
  elif [ "$(grep -c . "$OUT/badt.log")" -ne 1 ] || ! grep -q "^error: --prefetch-timing: " "$OUT/badt.log"; then
    bad "--prefetch-timing '$bad_v': no clear error: $(head -c 200 "$OUT/badt.log")"
  fi
done
if [ "$fail" -ne 0 ]; then echo "$fail failure(s)"; exit 1; fi
echo "test_prefetch_cli.sh: all prefetch settings gave the mapped run's output"
