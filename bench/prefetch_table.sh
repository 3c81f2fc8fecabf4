#!/usr/bin/env bash
# The prefetch table of issue 10 (items 3 and 5): for each case, decode tok/s
# with --prefetch none, lookahead (the default, adaptive) and oracle, with hit
# rate, prefetch precision, in-time recall, MB read per token and the share
# of decode time stalled on I/O. Cases whose model file is missing are
# skipped with a line saying so.
#
#   bench/prefetch_table.sh [-r N] [CASE...]
#
# Cases (all by default):
#   bench25 bench50   the shared bench model (BENCH_MODEL, ../shared/BENCH.md) with
#                     an expert cache of 25% / 50% of its expert bytes (560M / 1120M)
#   bench972          the same under --mem 972M in a 1G cgroup
#   q3greedy q3temp   the Qwen3-30B-A3B shape (Q3_MODEL, mp-gen qwen3moe q4_K_m,
#                     18.4 GiB) under --mem 7600M in an 8G cgroup: greedy (bench)
#                     and --temp 1 --seed 3 (run; the oracle replays a recording)
#   demo              the trained demo model (models/) with 2 experts per layer,
#                     256 greedy tokens after DEMO_PROMPT (run)
#   replay25 replay50 FLAME_MODEL (8 MoE layers x 64 experts top-6) replaying the
#                     FLAME trace (FLAME_TRACE) with caches of 16 / 32 per layer
# Each case's settings take turns round by round (every other round in reverse
# order), and each row is also given against --prefetch none paired by round:
# the mean relative difference, its standard error and the rounds won (bench
# rows: bench's tg_vs_none; run cases: a "paired" row).
# Environment: MP (binary; default build/moepager), BENCH_MODEL, Q3_MODEL,
# FLAME_MODEL, FLAME_TRACE, DEMO_MODEL, DEMO_PROMPT. A benchmark, not a test:
# it judges nothing. Run it on a quiet machine.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
MP=${MP:-$here/build/moepager}
BENCH_MODEL=${BENCH_MODEL:-/work/models/bench-mixtral-q8.gguf}
Q3_MODEL=${Q3_MODEL:-/work/models/q3-30b-shape.gguf}
FLAME_MODEL=${FLAME_MODEL:-/work/models/flame-shape.gguf}
FLAME_TRACE=${FLAME_TRACE:-$here/../shared/data/traces/flame-moe-290m-32x64.jsonl}
DEMO_MODEL=${DEMO_MODEL:-$here/models/demo-stdlib-moe.gguf}
DEMO_PROMPT=${DEMO_PROMPT:-def fibonacci(n):}
CG=$here/tests/helpers/cgroup_run.sh
reps=3
if [ "${1:-}" = "-r" ]; then reps=$2; shift 2; fi
cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=(bench25 bench50 bench972 q3greedy q3temp demo replay25 replay50)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# bench csv -> one line per row
rows() {
  python3 -c '
import csv, sys
label = sys.argv[1]
for r in csv.DictReader(open(sys.argv[2])):
    f = lambda k, s=1.0, d=1: ("%.*f" % (d, float(r[k]) * s)) if r.get(k) not in (None, "", "nan") else "-"
    pf = r["prefetch"] + ("" if r["prefetch"] == "none" else " d=" + r["lookahead"])
    vs = "-"
    if r.get("tg_vs_none"):
        vs = "%+.1f%%" % (float(r["tg_vs_none"]) * 100)
        if r.get("tg_vs_none_se"):
            n = len(r["tg_tps_reps"].split(";"))
            vs += " ± %.1f (%s/%d)" % (float(r["tg_vs_none_se"]) * 100, r["tg_vs_none_won"], n)
    print("| %s | %s | %s ± %s | %s | %s | %s | %s | %s | %s |" % (label, pf, f("tg_tps", 1, 2), f("tg_tps_sd", 1, 2),
          vs, f("hit_rate", 100), f("prefetch_precision", 100), f("prefetch_recall", 100), f("tg_mb_per_token", 1, 2),
          f("stall_share", 100)))
' "$1" "$2"
}

# run's stderr -> one line; and "ROUND|prefetch|tok/s" (or -) appended to ROUNDS
runrow() {
  python3 -c '
import re, sys
label, pf, path, rnd, rounds = sys.argv[1:6]
t = open(path).read()
g = re.search(r"generation: \d+ tokens, ([\d.]+) tok/s", t)
with open(rounds, "a") as f:
    f.write("%s|%s|%s\n" % (rnd, pf, g.group(1) if g else "-"))
d = re.search(r"experts, decode: \d+ tokens, stall [\d.]+ ms/token, (\d+)% of the time waiting for I/O, ([\d.]+) MB/token read(?:; prefetch: \d+ loads, precision ([\d.]+)%, in-time recall ([\d.]+)%)?", t)
h = re.search(r"expert cache: ([\d.]+)% hits", t)
if not g or not d:
    print("| %s | %s | failed: %s |" % (label, pf, t.strip().splitlines()[-1] if t.strip() else "no output")); sys.exit()
print("| %s | %s | %s | - | %s (all) | %s | %s | %s | %s |" % (label, pf, g.group(1), h.group(1) if h else "-",
      d.group(3) or "-", d.group(4) or "-", d.group(2), d.group(1)))
' "$@"
}

have() { [ -r "$1" ] || { echo "| $2 | skipped: $1 not found |"; return 1; }; }

# the rounds of a run-based case (lines "label|prefetch|tok/s") -> a paired row per prefetch
paired() {
  python3 -c '
import sys, math, collections, statistics
label, path = sys.argv[1:3]
rounds = collections.defaultdict(dict)
for line in open(path):
    r, pf, v = line.strip().split("|")
    if v != "-": rounds[r][pf] = float(v)
for pf in ("lookahead", "oracle"):
    d = [x[pf] / x["none"] - 1 for x in rounds.values() if pf in x and "none" in x and x["none"] > 0]
    if len(d) < 2: continue
    m = sum(d) / len(d); se = math.sqrt(sum((y - m) ** 2 for y in d) / (len(d) - 1) / len(d))
    print("| %s, paired | %s | - | %+.1f%% ± %.1f (%d/%d) | | | | | |" % (label, pf, 100 * m, 100 * se, sum(y > 0 for y in d), len(d)))
med = lambda pf: statistics.median(v) if (v := [x[pf] for x in rounds.values() if pf in x]) else None
n, la, o = med("none"), med("lookahead"), med("oracle")
if n and la and o and o > n:
    print("| %s: lookahead takes %.0f%% of the oracle'"'"'s lead over none (medians %.1f / %.1f / %.1f) | | | | | | | | |" % (label, 100 * (la - n) / (o - n), n, la, o))
' "$1" "$2"
}

# a run case: RUNS rounds of none, lookahead and oracle (the latter replaying TRACE), in
# turns, every other round in reverse order, each under the cgroup LIMIT with MODEL evicted
run_rounds() { # LABEL LIMIT MODEL TRACE ARGS...
  local label=$1 lim=$2 model=$3 trace=$4 r pf order extra
  shift 4
  : >"$tmp/rounds"
  for r in $(seq "$reps"); do
    order="none lookahead oracle"; [ $((r % 2)) = 0 ] && order="oracle lookahead none"
    for pf in $order; do
      extra=(); [ $pf = oracle ] && extra=(--oracle-trace "$trace")
      "$CG" "$lim" --evict "$model" -- "$MP" "$@" --prefetch $pf "${extra[@]}" >/dev/null 2>"$tmp/run.err"
      runrow "$label (run $r)" $pf "$tmp/run.err" "$r" "$tmp/rounds"
    done
  done
  paired "$label" "$tmp/rounds"
}

echo "| case | prefetch | decode tok/s | vs none (paired: mean ± se, rounds won) | hit % | precision % | in-time recall % | MB/token | stall % |"
echo "|---|---|---|---|---|---|---|---|---|"
for c in "${cases[@]}"; do
  case $c in
    bench25|bench50)
      have "$BENCH_MODEL" "$c" || continue
      size=560M; [ "$c" = bench50 ] && size=1120M
      "$MP" bench -m "$BENCH_MODEL" --cache-size $size --prefetch none,lookahead,oracle -p 512 -n 64 -r "$reps" -t 2 \
        -o csv >"$tmp/$c.csv" 2>"$tmp/$c.err" || { echo "| $c | failed: $(tail -1 "$tmp/$c.err") |"; continue; }
      rows "$c ($size)" "$tmp/$c.csv" ;;
    bench972)
      have "$BENCH_MODEL" "$c" || continue
      "$CG" 1G -- "$MP" bench -m "$BENCH_MODEL" --mem 972M --prefetch none,lookahead,oracle -p 512 -n 64 -r "$reps" \
        -t 2 -o csv >"$tmp/$c.csv" 2>"$tmp/$c.err" || { echo "| $c | failed: $(tail -1 "$tmp/$c.err") |"; continue; }
      rows "bench --mem 972M (1G cgroup)" "$tmp/$c.csv" ;;
    q3greedy)
      have "$Q3_MODEL" "$c" || continue
      "$CG" 8G -- "$MP" bench -m "$Q3_MODEL" --mem 7600M --prefetch none,lookahead,oracle -p 64 -n 64 -r "$reps" -t 2 \
        -o csv >"$tmp/$c.csv" 2>"$tmp/$c.err" || { echo "| $c | failed: $(tail -1 "$tmp/$c.err") |"; continue; }
      rows "Qwen3 shape --mem 7600M, greedy" "$tmp/$c.csv" ;;
    q3temp)
      have "$Q3_MODEL" "$c" || continue
      args=(run -m "$Q3_MODEL" -p "Once upon a time" -n 64 --temp 1 --seed 3 --mem 7600M -t 2 --no-display-prompt)
      "$CG" 8G --evict "$Q3_MODEL" -- "$MP" "${args[@]}" --prefetch none --trace-out "$tmp/q3.jsonl" >/dev/null 2>&1
      run_rounds "Qwen3 shape --mem 7600M, --temp 1" 8G "$Q3_MODEL" "$tmp/q3.jsonl" "${args[@]}" ;;
    demo)
      have "$DEMO_MODEL" "$c" || continue
      args=(run -m "$DEMO_MODEL" -p "$DEMO_PROMPT" -n 256 --temp 0 --cache-experts 2 -t 2 --no-display-prompt)
      "$MP" "${args[@]}" --prefetch none --trace-out "$tmp/demo.jsonl" >/dev/null 2>&1
      run_rounds "trained demo, 2 experts/layer" 1G "$DEMO_MODEL" "$tmp/demo.jsonl" "${args[@]}" ;;
    replay25|replay50)
      have "$FLAME_MODEL" "$c" || continue
      have "$FLAME_TRACE" "$c" || continue
      n=16; [ "$c" = replay50 ] && n=32
      "$MP" bench -m "$FLAME_MODEL" --routing-trace "$FLAME_TRACE" --cache-experts $n --prefetch none,lookahead,oracle \
        -p 64 -n 1984 -c 2048 -r "$reps" -t 2 -o csv >"$tmp/$c.csv" 2>"$tmp/$c.err" \
        || { echo "| $c | failed: $(tail -1 "$tmp/$c.err") |"; continue; }
      rows "FLAME trace replayed, $n/layer" "$tmp/$c.csv" ;;
    *) echo "prefetch_table.sh: unknown case $c" >&2; exit 2 ;;
  esac
done
