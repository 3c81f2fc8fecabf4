#!/usr/bin/env bash
# Decode speed under hard memory limits: llama.cpp (mmap, page cache) vs
# moepager (--mem: experts streamed into a fixed expert cache), plus the
# I/O efficiency figure: moepager's expert MB/s while I/O was busy next to
# fio's O_DIRECT random-read bandwidth at one expert per read.
#
#   bench/offload_vs_llamacpp.sh MODEL.gguf [LIMIT...]      (default 1G 1536M 4G)
#
# For each limit, cold (model evicted from the page cache before each run):
#   $MP_PEER/run_limited.sh LIMIT --evict MODEL -- llama_logits -m MODEL
#       --ids 1,300..315 -n NGEN -t THREADS --no-repack
#   $MP_PEER/run_limited.sh LIMIT --evict MODEL -- moepager logits -m MODEL
#       --ids 1,300..315 -n NGEN -t THREADS --mem LIMIT -o /dev/null-ish
# and one table row. Environment:
#   MP_PEER   built llama.cpp peer (build/llama_logits, run_limited.sh);
#             default /work/peer, else ../shared/peers/llamacpp
#   MP_BUILD  moepager build dir (default: <repo>/build)
#   THREADS (2)  NGEN (32)  FIO_RUNTIME (10 s; 0 skips fio)
#   LL_TIMEOUT / MP_TIMEOUT  seconds per run (1800 / 600); a run past it
#             shows "timeout" in the table
#   BENCH_OUT  where the logs go (default: a fresh mktemp -d); kept
# Needs root or a delegated memory cgroup (run_limited.sh), and a quiet
# machine for numbers worth reporting.
set -u

usage() { sed -n '2,/^set -u/p' "$0" | sed 's/^# \{0,1\}//; /^set -u/d' >&2; exit 2; }
[ $# -ge 1 ] || usage
case "$1" in -h|--help) usage ;; esac
MODEL=$1
shift
LIMITS=("$@")
[ ${#LIMITS[@]} -gt 0 ] || LIMITS=(1G 1536M 4G)
[ -f "$MODEL" ] || { echo "error: no model file $MODEL" >&2; exit 2; }

here=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${MP_PEER:-}" ]; then
  for p in /work/peer "$here/../shared/peers/llamacpp"; do
    [ -x "$p/build/llama_logits" ] && { MP_PEER=$p; break; }
  done
fi
PEER=${MP_PEER:-/work/peer}
BUILD=${MP_BUILD:-$here/build}
MP="$BUILD/moepager"
LL="$PEER/build/llama_logits"
RUNLIM="$PEER/run_limited.sh"
THREADS=${THREADS:-2}
NGEN=${NGEN:-32}
FIO_RUNTIME=${FIO_RUNTIME:-10}
LL_TIMEOUT=${LL_TIMEOUT:-1800}
MP_TIMEOUT=${MP_TIMEOUT:-600}
OUT=${BENCH_OUT:-$(mktemp -d /tmp/moepager-bench.XXXXXX)}
mkdir -p "$OUT" || exit 1
for x in "$MP" "$LL" "$RUNLIM"; do
  [ -x "$x" ] || { echo "error: $x not found or not executable (MP_BUILD / MP_PEER)" >&2; exit 2; }
done
IDS=1,$(seq -s, 300 315)

# Field extraction; "-" when a log lacks it.
pick() { local v; v=$(sed -n "$1" "$2" | tail -1); echo "${v:--}"; }
mib() { awk -v b="$1" 'BEGIN { if (b !~ /^[0-9]+$/) print "-"; else printf "%.0f", b / 1048576 }'; }

{
  echo "model:   $MODEL ($(stat -c %s "$MODEL") bytes)"
  echo "moepager $MP, llama.cpp $LL, $THREADS threads, $NGEN generated tokens, ids $IDS"
  echo "logs:    $OUT"
  echo
} | tee "$OUT/summary.txt"

hdr=$(printf '%-7s | %10s | %10s | %7s | %6s | %8s | %11s | %9s | %9s' \
  limit "llama tok/s" "mp tok/s" ratio "hits" "MB/token" "MB/s busy" "llama MiB" "mp MiB")
echo "$hdr" | tee -a "$OUT/summary.txt"
echo "${hdr//[^|]/-}" | tee -a "$OUT/summary.txt"

first_busy=""
mp_ids_ref=""
for lim in "${LIMITS[@]}"; do
  lg="$OUT/llama-$lim.log"
  mg="$OUT/moepager-$lim.log"

  timeout "$LL_TIMEOUT" "$RUNLIM" "$lim" --evict "$MODEL" -- \
    "$LL" -m "$MODEL" --ids "$IDS" -n "$NGEN" -t "$THREADS" --no-repack >"$lg" 2>&1
  lrc=$?
  ll_tps=$(pick 's/^generation: .* = \([0-9.]*\) tok\/s.*/\1/p' "$lg")
  [ $lrc -eq 124 ] && ll_tps=timeout
  [ $lrc -ne 0 ] && [ $lrc -ne 124 ] && ll_tps="rc=$lrc"
  ll_peak=$(mib "$(pick 's/^cgroup: .* peak \([0-9]*\).*/\1/p' "$lg")")

  timeout "$MP_TIMEOUT" "$RUNLIM" "$lim" --evict "$MODEL" -- \
    "$MP" logits -m "$MODEL" --ids "$IDS" -n "$NGEN" -t "$THREADS" --mem "$lim" \
    -o "$OUT/moepager-$lim.f32" >"$mg" 2>&1
  mrc=$?
  mp_tps=$(pick 's/^gen: .* at \([0-9.]*\) tok\/s.*/\1/p' "$mg")
  [ $mrc -eq 124 ] && mp_tps=timeout
  [ $mrc -ne 0 ] && [ $mrc -ne 124 ] && mp_tps="rc=$mrc"
  hits=$(pick 's/^expert cache: \([0-9.]*%\) hits.*/\1/p' "$mg")
  mbtok=$(pick 's/^expert cache: .* \([0-9.]*\) MB\/token.*/\1/p' "$mg")
  busy=$(pick 's/^expert cache: .* \([0-9.]*\) MB\/s while busy.*/\1/p' "$mg")
  if grep -q 'memory plan: all weights mapped' "$mg"; then hits="mapped"; fi
  mp_peak=$(mib "$(pick 's/^cgroup: .* peak \([0-9]*\).*/\1/p' "$mg")")
  ratio=$(awk -v a="$mp_tps" -v b="$ll_tps" 'BEGIN {
            if (a + 0 == a && b + 0 == b && b > 0) printf "%.1fx", a / b; else print "-" }')
  [ -z "$first_busy" ] && [ "$busy" != "-" ] && first_busy="$busy MB/s at $lim"

  # Every limit must give moepager the same tokens: only where the weights
  # sit changes.
  ids=$(pick 's/^gen_ids: //p' "$mg")
  if [ -z "$mp_ids_ref" ]; then mp_ids_ref=$ids
  elif [ "$ids" != "$mp_ids_ref" ]; then echo "warning: moepager gen_ids at $lim differ from the first limit's" >&2
  fi
  [ $mrc -ne 0 ] && echo "note: moepager at $lim: $(grep -m1 -E 'error|Killed' "$mg")" >&2
  [ $lrc -ne 0 ] && echo "note: llama.cpp at $lim: exit $lrc (see $lg)" >&2

  printf '%-7s | %10s | %10s | %7s | %6s | %8s | %11s | %9s | %9s\n' \
    "$lim" "$ll_tps" "$mp_tps" "$ratio" "$hits" "$mbtok" "$busy" "$ll_peak" "$mp_peak" |
    tee -a "$OUT/summary.txt"
done

# fio: random O_DIRECT reads of one expert each, 16 in flight, over the file.
if [ "$FIO_RUNTIME" -gt 0 ] 2>/dev/null; then
  if ! command -v fio >/dev/null; then
    echo "fio: not installed; skipped" | tee -a "$OUT/summary.txt"
  else
    # "one expert:      1.59 MiB (gate + up + down)" -> bytes, rounded up to 4 KiB.
    bs=$("$MP" inspect -m "$MODEL" 2>/dev/null | awk '/^one expert:/ {
           m = $4 == "KiB" ? 1024 : $4 == "MiB" ? 1048576 : $4 == "GiB" ? 1073741824 : 1;
           b = $3 * m; printf "%d", int((b + 4095) / 4096) * 4096 }')
    size=$(stat -c %s "$MODEL")
    if [ -z "$bs" ] || [ "$bs" -le 0 ]; then
      echo "fio: no expert size from moepager inspect; skipped" | tee -a "$OUT/summary.txt"
    else
      fio --name=r --filename="$MODEL" --direct=1 --ioengine=io_uring --rw=randread --bs="$bs" \
        --iodepth=16 --size="$size" --runtime="$FIO_RUNTIME" --time_based --output-format=json \
        >"$OUT/fio.json" 2>"$OUT/fio.err"
      gbs=$(python3 -c 'import json,sys; print("%.2f" % (json.load(open(sys.argv[1]))["jobs"][0]["read"]["bw_bytes"] / 1e9))' \
        "$OUT/fio.json" 2>/dev/null)
      echo | tee -a "$OUT/summary.txt"
      echo "fio randread bs=$bs (one expert) iodepth=16 direct io_uring: ${gbs:-failed (see $OUT/fio.err)} GB/s;" \
        "moepager while busy: ${first_busy:-n/a}" | tee -a "$OUT/summary.txt"
      if [ -n "$gbs" ] && [ -n "$first_busy" ]; then
        awk -v m="${first_busy%% *}" -v f="$gbs" 'BEGIN { if (f > 0) printf "moepager / fio: %.0f%%\n", 100 * m / 1000 / f }' |
          tee -a "$OUT/summary.txt"
      fi
    fi
  fi
fi
echo "summary: $OUT/summary.txt"
