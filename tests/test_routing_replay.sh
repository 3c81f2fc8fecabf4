#!/usr/bin/env bash
# --routing-trace: replaying recorded routing.
#  1. For a qwen3moe (q4_K) and a llama-moe (q8_0) model, 4 layers x 8
#     experts top-2: a `moepager logits` run (64-token prompt, 16 greedy
#     tokens, expert cache of 3 per layer, no prefetch) recorded with
#     --trace-out, then replayed with --routing-trace on the same prompt,
#     gives byte-identical logits and gen_ids, the same expert-cache
#     statistics (hits, misses, evictions) and, recorded again, a
#     byte-identical trace. Replayed on a different prompt, the cache
#     statistics and the recorded routing are still those of the trace (the
#     routing is the trace's, not the model's) while the logits differ.
#     Mapped (no budget) the replay gives the same logits too.
#  2. Sequences: in a two-sequence trace whose first sequence is the
#     recording, the default (concatenated) replay equals the recording;
#     --routing-seq 1 replays the second sequence alone.
#  3. run, logits and bench say on stderr that the routing is replayed;
#     bench's csv names the trace in its routing column and its md output
#     says so; bench's oracle predicts from the replayed trace (no
#     recording) and beats none; bench refuses -p + -n beyond the trace.
#  4. Malformed and mismatched traces (a layer, expert or k the model lacks,
#     fewer layers, a duplicate record, a missing position, a hole, text
#     that is not JSON, binary garbage, an empty file, no file, a sequence
#     that is not there, --oracle-trace beside --routing-trace) each end the
#     command with exit status 1 (no crash) and exactly one error line that
#     names the file.
# Exit 0 pass, 1 fail, 77 if the tools are not built.
set -u
BUILD=${MP_BUILD:-.}
MP="$BUILD/moepager"
GEN="$BUILD/mp-gen"
[ -x "$MP" ] || { echo "SKIP: $MP not built"; exit 77; }
[ -x "$GEN" ] || { echo "SKIP: $GEN not built"; exit 77; }
OUT="$BUILD/routing-replay-test"
rm -rf "$OUT" && mkdir -p "$OUT" || exit 1
fail=0
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }
IDS=$(seq -s, 1 64)
IDS2=$(seq -s, 101 164)
TO=120
REPLAYED="not the model's own router"

lg() { # TAG MODEL opts...: moepager logits, 64 + 16 tokens
  local tag=$1 model=$2
  shift 2
  timeout "$TO" "$MP" logits -m "$model" -n 16 -t 1 -o "$OUT/$tag.f32" "$@" >"$OUT/$tag.log" 2>&1
}
# "A hits, B misses, C evictions" of the expert cache line
cstats() { sed -n 's/^expert cache: [0-9.]*% hits (\([^)]*\)).*/\1/p' "$OUT/$1.log"; }

for spec in "qwen3moe|--arch qwen3moe --type q4_K --n-embd 256 --n-head 2 --n-head-kv 1 --head-dim 128 --n-ff 512 --n-ff-exp 256" \
            "llama-moe|--arch llama-moe --type q8_0 --n-embd 256 --n-ff 256"; do
  name=${spec%%|*}
  M="$OUT/$name.gguf"
  # shellcheck disable=SC2086
  "$GEN" ${spec#*|} --n-layer 4 --n-expert 8 --n-expert-used 2 --seed 5 -q -o "$M" || { bad "$name: mp-gen failed"; continue; }
  REC="$OUT/$name.rec.jsonl"
  lg "$name-rec" "$M" --ids "$IDS" --cache-experts 3 --prefetch none --trace-out "$REC" || { bad "$name: recording failed"; cat "$OUT/$name-rec.log"; continue; }
  ref_stats=$(cstats "$name-rec")
  [ -n "$ref_stats" ] || bad "$name: no expert cache line in the recording's output"
  grep -q "$REPLAYED" "$OUT/$name-rec.log" && bad "$name: a run with its own routing says it is replayed"

  # 1. same prompt: the same run
  lg "$name-rep" "$M" --ids "$IDS" --cache-experts 3 --prefetch none --routing-trace "$REC" --trace-out "$OUT/$name.rep.jsonl" ||
    { bad "$name: replay failed"; cat "$OUT/$name-rep.log"; continue; }
  cmp -s "$OUT/$name-rec.f32" "$OUT/$name-rep.f32" || bad "$name: replayed logits differ from the recorded run's"
  [ "$(grep '^gen_ids' "$OUT/$name-rep.log")" = "$(grep '^gen_ids' "$OUT/$name-rec.log")" ] || bad "$name: replayed gen_ids differ"
  [ "$(cstats "$name-rep")" = "$ref_stats" ] || bad "$name: replay's cache statistics '$(cstats "$name-rep")' != recorded run's '$ref_stats'"
  cmp -s "$REC" "$OUT/$name.rep.jsonl" || bad "$name: the replayed run's --trace-out differs from the trace it replayed"
  grep -q "routing replayed from $REC .*$REPLAYED" "$OUT/$name-rep.log" || bad "$name: logits does not say the routing is replayed"

  # another prompt: the trace's routing, not the model's
  lg "$name-other" "$M" --ids "$IDS2" --cache-experts 3 --prefetch none --routing-trace "$REC" --trace-out "$OUT/$name.other.jsonl" ||
    { bad "$name: replay on another prompt failed"; cat "$OUT/$name-other.log"; }
  [ "$(cstats "$name-other")" = "$ref_stats" ] || bad "$name: cache statistics on another prompt '$(cstats "$name-other")' != '$ref_stats'"
  cmp -s "$REC" "$OUT/$name.other.jsonl" || bad "$name: routing recorded on another prompt differs from the replayed trace"
  lg "$name-other-own" "$M" --ids "$IDS2" --cache-experts 3 --prefetch none || bad "$name: own-routing run on another prompt failed"
  cmp -s "$OUT/$name-other.f32" "$OUT/$name-other-own.f32" && bad "$name: replayed and own routing give the same logits (replay has no effect?)"

  # mapped: the logits of the recording
  lg "$name-mapped" "$M" --ids "$IDS" --routing-trace "$REC" || bad "$name: mapped replay failed"
  cmp -s "$OUT/$name-rec.f32" "$OUT/$name-mapped.f32" || bad "$name: mapped replay's logits differ"
done

M="$OUT/qwen3moe.gguf"
REC="$OUT/qwen3moe.rec.jsonl"
if [ -s "$REC" ]; then
  # 2. sequences: "s0" = the recording, "s1" = the recording's first 10 tokens
  TWO="$OUT/two.jsonl"
  sed 's/"problem_id": 0/"problem_id": "s0"/' "$REC" >"$TWO"
  grep -E '"token_idx": [0-9],' "$REC" | sed 's/"problem_id": 0/"problem_id": "s1"/' >>"$TWO"
  lg two-all "$M" --ids "$IDS" --cache-experts 3 --prefetch none --routing-trace "$TWO" || bad "concatenated replay failed"
  cmp -s "$OUT/qwen3moe-rec.f32" "$OUT/two-all.f32" || bad "concatenated replay: sequence 0 does not give the recording's logits"
  grep -q "2 sequences concatenated: positions 0..88" "$OUT/two-all.log" || bad "concatenated replay: the stderr line does not give 2 sequences, positions 0..88"
  timeout "$TO" "$MP" logits -m "$M" --ids "$IDS" -n 17 -t 1 -o "$OUT/two-80.f32" --routing-trace "$TWO" >"$OUT/two-80.log" 2>&1 ||
    bad "concatenated replay: position 79 (sequence s1's token 0) is not routed"
  timeout "$TO" "$MP" logits -m "$M" --ids 1,2,3,4,5,6,7,8,9,10 -n 1 -t 1 -o "$OUT/two-s1.f32" --routing-trace "$TWO" --routing-seq 1 --trace-out "$OUT/two-s1.jsonl" >"$OUT/two-s1.log" 2>&1 ||
    bad "--routing-seq 1 failed: $(grep error: "$OUT/two-s1.log")"
  grep -q "routing replayed from $TWO (sequence 1: positions 0..9" "$OUT/two-s1.log" || bad "--routing-seq 1: the stderr line does not name sequence 1"
  grep -E '"token_idx": [0-9],' "$REC" | cmp -s - "$OUT/two-s1.jsonl" || bad "--routing-seq 1 did not replay the second sequence"

  # 3. run and bench say so too
  timeout "$TO" "$MP" run -m "$M" -p "hello world" -n 4 -t 1 --routing-trace "$REC" >"$OUT/run.out" 2>"$OUT/run.log" ||
    bad "run with --routing-trace failed: $(grep error: "$OUT/run.log")"
  grep -q "$REPLAYED" "$OUT/run.log" || bad "run does not say the routing is replayed"
  timeout "$TO" "$MP" bench -m "$M" --routing-trace "$REC" --cache-experts 3 --prefetch none,oracle -p 64 -n 15 -r 1 -t 1 -o csv \
    >"$OUT/bench.csv" 2>"$OUT/bench.log" || bad "bench with --routing-trace failed: $(grep error: "$OUT/bench.log")"
  grep -q "$REPLAYED" "$OUT/bench.log" || bad "bench does not say the routing is replayed on stderr"
  grep -q "recording the routing" "$OUT/bench.log" && bad "bench recorded a routing for the oracle instead of using the replayed trace"
  col() { awk -F, -v name="$1" -v row="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == name) c = i } NR == row + 1 { gsub(/"/, "", $c); print $c }' "$OUT/bench.csv"; }
  [ "$(col routing 1)" = "$REC" ] && [ "$(col routing 2)" = "$REC" ] || bad "bench csv: routing column is '$(col routing 1)', not the trace"
  h_none=$(col hit_rate 1)
  h_oracle=$(col hit_rate 2)
  awk -v a="$h_oracle" -v b="$h_none" 'BEGIN { exit !(a > b) }' || bad "bench: the oracle's decode hit rate $h_oracle is not above none's $h_none"
  timeout "$TO" "$MP" bench -m "$M" --routing-trace "$REC" --cache-experts 3 --prefetch none -p 64 -n 15 -r 1 -t 1 >"$OUT/bench.md" 2>/dev/null
  grep -q "^Routing replayed from $REC" "$OUT/bench.md" || bad "bench md output does not say the routing is replayed"
  timeout "$TO" "$MP" bench -m "$M" --routing-trace "$REC" --cache-experts 3 --prefetch none -p 64 -n 16 -r 1 -t 1 >/dev/null 2>"$OUT/bench-long.log"
  [ $? -eq 1 ] && grep -q "^error: bench: -p 64 + -n 16 tokens need positions 0..79, but $REC routes positions 0..78" "$OUT/bench-long.log" ||
    bad "bench past the trace's positions: $(cat "$OUT/bench-long.log")"

  # 4. bad traces: one error line naming the file, exit 1
  B="$OUT/bad"
  mkdir -p "$B"
  line() { printf '{"problem_id": 0, "token_idx": %s, "layer": %s, "experts": [%s]}\n' "$1" "$2" "$3"; }
  { cat "$REC"; line 0 4 "1, 2"; } >"$B/layers.jsonl"
  { cat "$REC"; line 3 1 "1, 8"; } >"$B/expert.jsonl"
  { cat "$REC"; line 3 1 "1, 2, 3"; } >"$B/k.jsonl"
  grep -v '"layer": 3,' "$REC" >"$B/fewer.jsonl"
  { cat "$REC"; line 7 2 "0, 1"; } >"$B/dup.jsonl"
  grep -E '"token_idx": [0-3]?[0-9],' "$REC" >"$B/short.jsonl"
  grep -v '"token_idx": 5, "layer": 2,' "$REC" >"$B/hole.jsonl"
  { head -n 3 "$REC"; echo 'this is not JSON'; } >"$B/text.jsonl"
  head -c 3000 "$MP" >"$B/binary.jsonl"
  : >"$B/empty.jsonl"
  check_bad() { # NAME EXPECTED-MESSAGE-PART opts...
    local name=$1 want=$2
    shift 2
    timeout "$TO" "$MP" logits -m "$M" --ids "$IDS" -n 16 -t 1 -o "$B/$name.f32" --cache-experts 3 "$@" >"$B/$name.out" 2>"$B/$name.log"
    local rc=$? n
    n=$(grep -c '^error:' "$B/$name.log")
    if [ $rc -ne 1 ]; then bad "$name: exit status $rc (expected 1): $(tail -n 3 "$B/$name.log")"
    elif [ "$n" -ne 1 ]; then bad "$name: $n error lines: $(cat "$B/$name.log")"
    elif ! grep '^error:' "$B/$name.log" | grep -qF -- "$want"; then bad "$name: error '$(grep '^error:' "$B/$name.log")' lacks '$want'"
    fi
  }
  check_bad layers "layers.jsonl:$(($(wc -l <"$REC") + 1)): layer 4, but the model has 4 MoE layers" --routing-trace "$B/layers.jsonl"
  check_bad expert "expert.jsonl:$(($(wc -l <"$REC") + 1)): expert 8, but the model's MoE layers have 8 experts" --routing-trace "$B/expert.jsonl"
  check_bad k "k.jsonl:$(($(wc -l <"$REC") + 1)): 3 experts per token, but the model routes each token to 2 (k)" --routing-trace "$B/k.jsonl"
  check_bad fewer "fewer.jsonl: the trace routes 3 MoE layers, but the model has 4" --routing-trace "$B/fewer.jsonl"
  check_bad dup "dup.jsonl:$(($(wc -l <"$REC") + 1)): a second record for sequence 0, token_idx 7, layer 2" --routing-trace "$B/dup.jsonl"
  check_bad short "short.jsonl: no routing for position 40: the trace maps positions 0..39" --routing-trace "$B/short.jsonl"
  check_bad hole "hole.jsonl: no routing for position 5 (sequence 0, token_idx 5) at MoE layer 2" --routing-trace "$B/hole.jsonl"
  check_bad text "text.jsonl:4: expected '{'" --routing-trace "$B/text.jsonl"
  check_bad binary "binary.jsonl:1:" --routing-trace "$B/binary.jsonl"
  check_bad empty "empty.jsonl: the routing trace has no records" --routing-trace "$B/empty.jsonl"
  check_bad missing "$B/missing.jsonl: cannot open trace" --routing-trace "$B/missing.jsonl"
  check_bad seq "no sequence 5: the trace has 1" --routing-trace "$REC" --routing-seq 5
  check_bad oracle "drop --oracle-trace" --routing-trace "$REC" --oracle-trace "$REC" --prefetch oracle
  # the oracle's own trace goes through the same checks
  check_bad oracle-expert "expert.jsonl:$(($(wc -l <"$REC") + 1)): expert 8" --prefetch oracle --oracle-trace "$B/expert.jsonl"
fi

[ $fail -eq 0 ] && echo "PASS" || echo "$fail failure(s)"
[ $fail -eq 0 ]
