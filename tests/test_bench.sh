#!/usr/bin/env bash
# moepager bench on a tiny mp-gen model (3 layers x 8 experts, top-2):
#  - every row of a deterministic sweep (prefetch none, -r 1) matches what
#    `moepager logits` reports with the same flags on the same token ids
#    (hits, misses, evictions and MB read of prompt + decode), and the prompt
#    read each expert at most once per chunk (pp_loads <= pp_distinct);
#  - json and jsonl parse with python3 json, csv with python3 csv, with the
#    documented field names and one row per combination;
#  - no budget flag gives one "all in RAM" row; 'oracle' records and replays
#    the routing and removes its temporary trace;
#  - --plot writes valid XML with one line per prefetch setting per panel, a
#    knee marker per line, the RAM ceiling and the knee rule in the legend;
#    rendered with headless Chromium when it is installed;
#  - --trace replay on tests/data/traces/tiny-2x3.jsonl: Belady's hits >= every
#    policy's at every size and mode; --io drives the real cache;
#  - --suggest prints a recommendation; bad flags give one clear error each.
# Exit 0 pass, 1 fail, 77 when the tools are not built.
set -u

BUILD=${MP_BUILD:-.}
SRC=${MP_SRC:-$(cd "$(dirname "$0")/.." && pwd)}
MP="$BUILD/moepager"
GEN="$BUILD/mp-gen"
[ -x "$MP" ] || { echo "SKIP: $MP not built"; exit 77; }
[ -x "$GEN" ] || { echo "SKIP: $GEN not built"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: no python3"; exit 77; }
OUT="$BUILD/bench-test"
rm -rf "$OUT" && mkdir -p "$OUT/tmp" || exit 1
export TMPDIR="$OUT/tmp"
TO=120

fail=0
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }

M="$OUT/tiny.gguf"
"$GEN" -q --arch llama-moe --type q8_0 --n-embd 128 --n-ff 128 --n-layer 3 --n-expert 8 --n-expert-used 2 \
  --seed 5 -o "$M" || { echo "FAIL: mp-gen"; exit 1; }

P=40
N=6
COMMON=(-m "$M" -p $P -n $N -r 1 -t 1 -c 256)

# ---- 1. sweep rows match moepager logits --------------------------------------
if ! timeout $TO "$MP" bench "${COMMON[@]}" --cache-experts 2,3,8 --cache-size 300K --prefetch none \
  --policy lru,lfu-decay -o json >"$OUT/sweep.json" 2>"$OUT/sweep.err"; then
  bad "sweep: exit $?: $(grep -m1 error "$OUT/sweep.err")"
fi
grep -q '^\[1/8\] cache 300K policy lru prefetch none io-depth 16 rep 1/1' "$OUT/sweep.err" ||
  bad "sweep: no progress line like '[1/8] cache 2/layer policy lru prefetch none ...'"
IDS=$("$MP" bench -m "$M" -p $P --print-ids)
[ "$(echo "$IDS" | tr ',' '\n' | wc -l)" -eq $P ] || bad "--print-ids: not $P ids: $IDS"

python3 - "$OUT/sweep.json" >"$OUT/rows.txt" <<'EOF' || bad "sweep json: $(cat "$OUT/rows.txt")"
import json, sys
rows = json.load(open(sys.argv[1]))
assert len(rows) == 8, f"{len(rows)} rows, expected 8"
for r in rows:
    assert r["streamed"] is True and r["prefetch"] == "none" and r["reps"] == 1, r
    assert r["pp_loads"] <= r["pp_distinct"], f"prompt read an expert twice in a chunk: {r}"
    assert r["pp_late_hits"] == 0 and r["tg_late_hits"] == 0
    # the decode hit rate is the decode's own counters
    assert abs(r["hit_rate"] - r["tg_hits"] / (r["tg_hits"] + r["tg_misses"])) < 1e-6, r
    flag = "--cache-experts" if r["budget_kind"] == "cache_experts" else "--cache-size"
    val = r["budget_value"] if flag == "--cache-experts" else r["budget"]
    print(flag, val, r["policy"], r["pp_hits"] + r["tg_hits"], r["pp_misses"] + r["tg_misses"],
          r["pp_evictions"] + r["tg_evictions"], "%.1f" % ((r["pp_bytes_read"] + r["tg_bytes_read"]) / 1e6),
          )
EOF
n_checked=0
while read -r flag val pol hits misses evs mb; do
  log="$OUT/logits-$pol-$val.log"
  timeout $TO "$MP" logits -m "$M" --ids "$IDS" -n $((N + 1)) -t 1 -c 256 "$flag" "$val" --policy "$pol" \
    --prefetch none >"$log" 2>&1 || { bad "logits $flag $val $pol: exit $?"; continue; }
  want="expert cache: [0-9.]*% hits ($hits hits, $misses misses, $evs evictions), $mb MB read"
  grep -q "^$want" "$log" || bad "bench row $flag $val $pol ($hits hits, $misses misses, $evs evictions, $mb MB) != logits: $(grep '^expert cache' "$log")"
  n_checked=$((n_checked + 1))
done <"$OUT/rows.txt"
[ $n_checked -eq 8 ] || bad "compared $n_checked rows with moepager logits, expected 8"

# ---- 2. csv / jsonl / md; the all-in-RAM row; oracle -------------------------
timeout $TO "$MP" bench "${COMMON[@]}" --cache-experts 2 --prefetch none,lookahead,oracle --lookahead 1,2 \
  --prefetch-min-prob 0,auto -o csv \
  >"$OUT/sweep.csv" 2>"$OUT/csv.err" || bad "csv sweep: exit $?: $(grep -m1 error "$OUT/csv.err")"
python3 - "$OUT/sweep.csv" "$OUT/sweep.json" <<'EOF' || bad "csv sweep does not parse as expected"
import csv, json, sys
rows = list(csv.DictReader(open(sys.argv[1])))
keys = [k for k in json.load(open(sys.argv[2]))[0].keys() if not k.startswith("tg_layer_")]
assert list(rows[0].keys()) == keys, "csv header != json keys (less the per-layer arrays)"
assert [r["prefetch"] for r in rows] == ["none"] + ["lookahead"] * 4 + ["oracle"] * 2, [r["prefetch"] for r in rows]
assert [r["lookahead"] for r in rows] == ["0", "1", "1", "2", "2", "1", "2"]
assert [r["prefetch_min_prob"] for r in rows] == ["0", "0", "-1", "0", "-1", "0", "0"]
assert rows[0]["prefetch_precision"] == "", "n/a must be empty in csv"
o = rows[5]
assert int(o["tg_prefetches"]) > 0 and float(o["prefetch_precision"]) > 0, o
assert int(o["tg_prefetch_wasted"]) == 0 and int(o["tg_wasted_bytes"]) == 0, "the oracle wasted a prefetch"
EOF
timeout $TO "$MP" bench "${COMMON[@]}" --cache-experts 2 --prefetch none,lookahead --prefetch-min-prob 0 -o jsonl \
  >"$OUT/layers.jsonl" 2>"$OUT/layers.err" || bad "per-layer jsonl: exit $?"
python3 - "$OUT/layers.jsonl" <<'EOF' || bad "json per-layer arrays not as expected"
import json, sys
none, la = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
for r in (none, la):
    assert len(r["tg_layer_precision"]) == len(r["tg_layer_recall"]) == 3, r  # the test model has 3 layers
assert all(v is None for v in none["tg_layer_precision"]), none["tg_layer_precision"]
# lookahead never predicts layer 0 (that needs the next token's hidden state)
assert la["tg_layer_precision"][0] is None, la["tg_layer_precision"]
assert all(v is not None and 0 <= v <= 1 for v in la["tg_layer_precision"][1:] + la["tg_layer_recall"]), la
# wasted = evicted unused prefetches, at most the prefetches that were not used
assert la["tg_prefetch_wasted"] <= la["tg_prefetches"] - la["tg_prefetch_used"], la
EOF
# paired against the none row, round by round; every other round in reverse order
timeout $TO "$MP" bench -m "$M" -p $P -n $N -r 2 -t 1 -c 256 --cache-experts 2 --prefetch none,lookahead,oracle \
  -o csv >"$OUT/paired.csv" 2>"$OUT/paired.err" || bad "paired sweep: exit $?: $(grep -m1 error "$OUT/paired.err")"
python3 - "$OUT/paired.csv" "$OUT/paired.err" <<'EOF' || bad "tg_vs_none does not follow tg_tps_reps, or the rounds' order"
import csv, math, re, sys
rows = list(csv.DictReader(open(sys.argv[1])))
reps = [[float(v) for v in r["tg_tps_reps"].split(";")] for r in rows]
assert all(len(v) == 2 for v in reps), reps
for r, v in zip(rows, reps):
    assert abs(sum(v) / 2 - float(r["tg_tps"])) < 2e-3, (r["tg_tps"], v)
assert rows[0]["prefetch"] == "none" and rows[0]["tg_vs_none"] == "" and rows[0]["tg_vs_none_won"] == ""
for r, v in zip(rows[1:], reps[1:]):
    d = [a / b - 1 for a, b in zip(v, reps[0])]
    m = sum(d) / 2
    se = math.sqrt(sum((x - m) ** 2 for x in d)) / math.sqrt(2)
    assert abs(float(r["tg_vs_none"]) - m) < 1e-3 and abs(float(r["tg_vs_none_se"]) - se) < 1e-3, (r, d)
    assert int(r["tg_vs_none_won"]) == sum(x > 0 for x in d), (r, d)
order = re.findall(r"\[(\d)/3\] .* rep (\d)/2", open(sys.argv[2]).read())
assert order == [(i, "1") for i in "123"] + [(i, "2") for i in "321"], order
EOF
grep -q 'recording the routing' "$OUT/csv.err" || bad "oracle: no recording announced"
[ -z "$(ls -A "$OUT/tmp")" ] || bad "oracle: temporary trace left behind: $(ls "$OUT/tmp")"

timeout $TO "$MP" bench "${COMMON[@]}" -o jsonl >"$OUT/ram.jsonl" 2>"$OUT/ram.err" || bad "ram row: exit $?"
python3 - "$OUT/ram.jsonl" <<'EOF' || bad "no budget flag: not one all-in-RAM row"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
assert len(rows) == 1 and rows[0]["budget"] == "all in RAM" and rows[0]["streamed"] is False, rows
assert rows[0]["hit_rate"] is None and rows[0]["tg_tps"] > 0
EOF
timeout $TO "$MP" bench "${COMMON[@]}" --cache-experts 2 >"$OUT/md.txt" 2>/dev/null || bad "md: exit $?"
grep -q '^| budget | cache | slots/layer | policy | prefetch | io depth | pp t/s | tg t/s | tg vs none |' "$OUT/md.txt" \
  || bad "md: no table header"
grep -q '^| 2/layer | ' "$OUT/md.txt" || bad "md: no 2/layer row"

# ---- 3. the plot -----------------------------------------------------------------
SVG="$OUT/plot.svg"
timeout $TO "$MP" bench "${COMMON[@]}" --cache-experts 2,4,8 --cache-size ram --prefetch none,lookahead \
  --plot "$SVG" >/dev/null 2>"$OUT/plot.err" || bad "plot sweep: exit $?: $(grep -m1 error "$OUT/plot.err")"
python3 - "$SVG" <<'EOF' || bad "svg: not what was expected"
import sys, xml.etree.ElementTree as ET
ns = {"s": "http://www.w3.org/2000/svg"}
root = ET.parse(sys.argv[1]).getroot()
lines = root.findall(".//s:polyline[@class='series']", ns)
names = sorted({(l.get("data-series"), l.get("data-panel")) for l in lines})
assert names == [("lookahead d=2 adaptive", "hit_rate"), ("lookahead d=2 adaptive", "tps"), ("none", "hit_rate"), ("none", "tps")], names
for l in lines:
    assert len(l.get("points").split()) == 3, l.get("points")
assert len(root.findall(".//s:circle[@class='knee']", ns)) == 2
assert root.findall(".//s:line[@class='ram']", ns), "no all-in-RAM line"
text = " ".join("".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text"))
for want in ("generation tok/s", "decode hit rate", "expert cache size", "knee", "less than 10% tok/s", "all in RAM"):
    assert want in text, want
EOF
CHROME=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -n "$CHROME" ]; then
  rm -f "$OUT/plot.png"
  timeout 60 "$CHROME" --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=900,660 \
    --user-data-dir="$OUT/chrome" --screenshot="$OUT/plot.png" "file://$(cd "$OUT" && pwd)/plot.svg" \
    >"$OUT/chrome.log" 2>&1
  if [ -s "$OUT/plot.png" ]; then
    # a blank page compresses to almost nothing; the plot does not
    [ "$(stat -c %s "$OUT/plot.png")" -gt 10000 ] || bad "chromium rendered an (almost) empty page"
  else
    echo "note: chromium could not take a screenshot here (see $OUT/chrome.log); XML check only"
  fi
else
  echo "note: no chromium: the svg was checked as XML only"
fi

# ---- 4. trace replay ---------------------------------------------------------------
TR="$SRC/tests/data/traces/tiny-2x3.jsonl"
timeout $TO "$MP" bench --trace "$TR" --cache-experts 1,2,3 --per-layer --global --policy lru,lfu-decay -o csv \
  >"$OUT/replay.csv" 2>"$OUT/replay.err" || bad "replay: exit $?: $(grep -m1 error "$OUT/replay.err")"
python3 - "$OUT/replay.csv" <<'EOF' || bad "replay: Belady below a policy, or rows missing"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert len(rows) == 3 * 2 * 2, len(rows)
for r in rows:
    assert int(r["belady_hits"]) >= int(r["hits"]), r
    assert int(r["accesses"]) == 16, r
EOF
timeout $TO "$MP" bench --trace "$TR" --cache-experts 2 >"$OUT/replay.md" 2>/dev/null || bad "replay md: exit $?"
grep -q '^| experts/layer | mode | policy | hit % | Belady % |' "$OUT/replay.md" || bad "replay md: no header"
timeout $TO "$MP" bench --trace "$TR" --cache-experts 1,2 --global --io -m "$M" -o json >"$OUT/real.json" \
  2>"$OUT/real.err" || bad "replay --io: exit $?: $(grep -m1 error "$OUT/real.err")"
python3 - "$OUT/real.json" <<'EOF' || bad "replay --io: real cache figures missing or out of range"
import json, sys
rows = json.load(open(sys.argv[1]))
assert rows and all(0 <= r["real_hit_rate"] <= 1 and r["real_bytes_read"] > 0 for r in rows), rows
assert all(r["real_hit_rate"] <= r["belady_hit_rate"] + 1e-9 for r in rows), rows
# the real cache runs the same policy code as the replay: same hits on this trace
assert all(abs(r["real_hit_rate"] - r["hit_rate"]) < 1e-9 for r in rows), rows
EOF

# ---- 5. --suggest ----------------------------------------------------------------------
timeout $TO "$MP" bench --suggest -m "$M" --mem 28M -p 16 -n 4 -t 1 >"$OUT/suggest.txt" 2>"$OUT/suggest.err" ||
  bad "suggest: exit $?: $(grep -m1 error "$OUT/suggest.err")"
grep -q '^recommended for --mem 28 MiB' "$OUT/suggest.txt" || bad "suggest: no recommendation"
grep -Eq '^  (--cache-size .* --prefetch|no budget flag)' "$OUT/suggest.txt" || bad "suggest: no flags recommended"

# ---- 6. bad flags ------------------------------------------------------------------------
# expect_err PATTERN ARGS...: exit status 1 and one error line matching PATTERN
expect_err() {
  local pat=$1
  shift
  timeout $TO "$MP" bench "$@" >"$OUT/bad.out" 2>"$OUT/bad.err"
  local rc=$?
  if [ $rc -ne 1 ]; then
    bad "bench $*: exit $rc, expected 1"
  elif ! grep -q "^error: .*$pat" "$OUT/bad.err"; then
    bad "bench $*: error '$(head -1 "$OUT/bad.err")' does not say '$pat'"
  fi
}
expect_err "unknown option '--frob'" -m "$M" --frob
expect_err "'12Q' is not a size" -m "$M" --cache-size 256K,12Q
expect_err "unknown replacement policy 'fifo'" -m "$M" --cache-experts 2 --policy lru,fifo
expect_err "unknown predictor 'psychic'" -m "$M" --prefetch none,psychic
expect_err "unknown format 'xml'" -m "$M" -o xml
expect_err "only SVG" -m "$M" --plot x.png
expect_err "applies to trace replay only" -m "$M" --per-layer
expect_err "not in \[1, 64\]" -m "$M" --lookahead 1,0
expect_err "'1.5' is not a probability in \[0, 1\]" -m "$M" --prefetch-min-prob 0.5,1.5
expect_err "is not an integer" -m "$M" -r 0
expect_err "too small for -p" -m "$M" -c 16 -p 32 -n 8
expect_err "give one --mem" --suggest -m "$M"
expect_err "no-such.jsonl" --trace "$OUT/no-such.jsonl"
expect_err "give the model to read with -m" --trace "$TR" --io
expect_err "need at least" -m "$M" --mem 1M -p 4 -n 1

echo "test_bench: $fail failure(s)"
[ $fail -eq 0 ]
