#!/usr/bin/env bash
# moepager vs llama.cpp on one model file, in the same run: prompt and decode tok/s,
# in RAM and under hard memory limits (the benchmarks of issues 11 and 12: the
# DeepSeek-V2-Lite, gpt-oss-20b and Kimi-K2-like shapes of bench/make_arch_models.sh).
#
#   bench/arch_vs_llamacpp.sh MODEL.gguf [BUDGET...]      (default: ram 4G)
#
# BUDGET "ram": no limit, the file warm in the page cache (read once before), llama.cpp
# mmap, moepager with its default plan (all weights mapped when they fit). Any other
# BUDGET (e.g. 4G, 2560M): cold (the file evicted from the page cache before each run),
# each engine under a memory cgroup of that size (the peer's run_limited.sh), moepager
# with --mem BUDGET (experts streamed through its expert cache), llama.cpp with mmap
# (re-reading evicted weights through page faults). Per budget and repeat, one row:
#   llama.cpp pp/tg tok/s, moepager pp/tg tok/s, the ratios mp/llama, moepager's expert
#   cache hit rate, the cgroup peaks, and whether the greedy tokens are the same (they
#   must be: both engines give the same logits, bit for bit on AVX-512).
# The two runs of a row are back to back (llama.cpp first); REPEAT > 1 interleaves them
# again, so a noisy neighbour hits both. Runs:
#   [run_limited.sh B --evict MODEL --] llama_logits -m MODEL --ids PROMPT -n NGEN
#       -t THREADS -c CTX --no-repack $LL_EXTRA
#   [run_limited.sh B --evict MODEL --] moepager logits -m MODEL --ids PROMPT -n NGEN
#       -t THREADS -c CTX [--mem B] $MP_EXTRA -o LOGDIR/....f32
# PROMPT: BOS then NPROMPT-1 ids from 300 up (below every vocab these shapes use).
# Environment:
#   MP_PEER   built llama.cpp peer (build/llama_logits, run_limited.sh); default
#             /tmp/peer/llamacpp, /work/peer, else ../shared/peers/llamacpp
#   MP_BUILD  moepager build dir (default: <repo>/build)
#   THREADS (2)  NPROMPT (64)  NGEN (32)  REPEAT (1)
#   LL_EXTRA  more llama_logits options (default none: --no-repack is always given, as
#             in every parity and offload run; llama.cpp's repacked Q4_K/Q8_0 copies would
#             not fit a limit anyway)
#   MP_EXTRA  more moepager options (e.g. "--prefetch off")
#   LL_TIMEOUT / MP_TIMEOUT  seconds per run (1800 / 900); "timeout" in the table
#   BENCH_OUT where the logs go (default: a fresh mktemp -d); kept
# Limits need root or a delegated memory cgroup (run_limited.sh). Take numbers worth
# reporting on a quiet machine only.
set -u

usage() { sed -n '2,/^set -u/p' "$0" | sed 's/^# \{0,1\}//; /^set -u/d' >&2; exit 2; }
[ $# -ge 1 ] || usage
case "$1" in -h|--help) usage ;; esac
MODEL=$1
shift
BUDGETS=("$@")
[ ${#BUDGETS[@]} -gt 0 ] || BUDGETS=(ram 4G)
[ -f "$MODEL" ] || { echo "error: no model file $MODEL" >&2; exit 2; }

here=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${MP_PEER:-}" ]; then
    for p in /tmp/peer/llamacpp /work/peer "$here/../shared/peers/llamacpp"; do
        [ -x "$p/build/llama_logits" ] && { MP_PEER=$p; break; }
    done
fi
PEER=${MP_PEER:-/work/peer}
BUILD=${MP_BUILD:-$here/build}
MP="$BUILD/moepager"
LL="$PEER/build/llama_logits"
RUNLIM="$PEER/run_limited.sh"
THREADS=${THREADS:-2}
NPROMPT=${NPROMPT:-64}
NGEN=${NGEN:-32}
REPEAT=${REPEAT:-1}
LL_EXTRA=${LL_EXTRA:-}
MP_EXTRA=${MP_EXTRA:-}
LL_TIMEOUT=${LL_TIMEOUT:-1800}
MP_TIMEOUT=${MP_TIMEOUT:-900}
OUT=${BENCH_OUT:-$(mktemp -d /tmp/moepager-arch-bench.XXXXXX)}
mkdir -p "$OUT" || exit 1
for x in "$MP" "$LL"; do
    [ -x "$x" ] || { echo "error: $x not found or not executable (MP_BUILD / MP_PEER)" >&2; exit 2; }
done
for b in "${BUDGETS[@]}"; do
    if [ "$b" != ram ]; then
        [ -x "$RUNLIM" ] || { echo "error: $RUNLIM not found (needed for budget $b)" >&2; exit 2; }
        [[ "$b" =~ ^[0-9]+[KkMmGg]?$ ]] || { echo "error: budget '$b' is neither 'ram' nor a size like 4G" >&2; exit 2; }
    fi
done
[ "$NPROMPT" -ge 2 ] 2>/dev/null || { echo "error: NPROMPT must be >= 2" >&2; exit 2; }
IDS=1,$(seq -s, 300 $((300 + NPROMPT - 2)))
# The same context for both: the prompt and the generated tokens, rounded up to 256
# (llama_logits' own default rule), so neither sizes a bigger KV cache than the other.
CTX=$(( (NPROMPT + NGEN + 255) / 256 * 256 ))

pick() { local v; v=$(sed -n "$1" "$2" | tail -1); echo "${v:--}"; }
mib() { awk -v b="$1" 'BEGIN { if (b !~ /^[0-9]+$/) print "-"; else printf "%.0f", b / 1048576 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 == a && b + 0 == b && b > 0) printf "%.2fx", a / b; else print "-" }'; }

{
    echo "model:    $MODEL ($(stat -c %s "$MODEL") bytes)"
    "$MP" inspect -m "$MODEL" 2>/dev/null | grep -E '^(architecture|experts|routing|attention|weight types|one expert):' | sed 's/^/          /'
    echo "engines:  moepager $MP ($(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo '?'))," \
        "llama.cpp $LL --no-repack $LL_EXTRA"
    echo "run:      $THREADS threads, prompt $NPROMPT ids, $NGEN generated, ctx $CTX, $REPEAT repeat(s)," \
        "$(nproc) CPUs, $(awk '/MemTotal/ {printf "%.1f GiB RAM", $2 / 1048576}' /proc/meminfo)"
    echo "logs:     $OUT"
    echo
} | tee "$OUT/summary.txt"

hdr=$(printf '%-6s %-2s | %9s %9s %7s | %9s %9s %7s | %6s | %9s %9s | %s' \
    budget "#" "llama pp" "mp pp" "pp x" "llama tg" "mp tg" "tg x" hits "llama MiB" "mp MiB" tokens)
echo "$hdr" | tee -a "$OUT/summary.txt"
echo "${hdr//[^|]/-}" | tee -a "$OUT/summary.txt"

status=0
for b in "${BUDGETS[@]}"; do
    for r in $(seq 1 "$REPEAT"); do
        lg="$OUT/llama-$b-$r.log"
        mg="$OUT/moepager-$b-$r.log"
        if [ "$b" = ram ]; then
            cat "$MODEL" >/dev/null # warm: both engines read the file from the page cache
            lim=(); mem=()
        else
            lim=("$RUNLIM" "$b" --evict "$MODEL" --)
            mem=(--mem "$b")
        fi
        # shellcheck disable=SC2086
        timeout "$LL_TIMEOUT" "${lim[@]}" /usr/bin/time -f 'maxrss_kib: %M' \
            "$LL" -m "$MODEL" --ids "$IDS" -n "$NGEN" -t "$THREADS" -c "$CTX" --no-repack $LL_EXTRA >"$lg" 2>&1
        lrc=$?
        # shellcheck disable=SC2086
        timeout "$MP_TIMEOUT" "${lim[@]}" /usr/bin/time -f 'maxrss_kib: %M' \
            "$MP" logits -m "$MODEL" --ids "$IDS" -n "$NGEN" -t "$THREADS" -c "$CTX" "${mem[@]}" $MP_EXTRA \
            -o "$OUT/moepager-$b-$r.f32" >"$mg" 2>&1
        mrc=$?

        l_pp=$(pick 's/^prompt_eval\[0\]: .* = \([0-9.]*\) tok\/s.*/\1/p' "$lg")
        l_tg=$(pick 's/^generation: .* = \([0-9.]*\) tok\/s.*/\1/p' "$lg")
        m_pp=$(pick 's/^prompt_eval: .* = \([0-9.]*\) tok\/s.*/\1/p' "$mg")
        m_tg=$(pick 's/^gen: .* at \([0-9.]*\) tok\/s.*/\1/p' "$mg")
        case $lrc in 0) ;; 124) l_pp=timeout; l_tg=timeout ;; *) l_pp="rc=$lrc"; l_tg=- ;; esac
        case $mrc in 0) ;; 124) m_pp=timeout; m_tg=timeout ;; *) m_pp="rc=$mrc"; m_tg=- ;; esac
        hits=$(pick 's/^expert cache: \([0-9.]*%\) hits.*/\1/p' "$mg")
        grep -q 'memory plan: all weights mapped' "$mg" && hits=mapped
        if [ "$b" = ram ]; then
            l_mem=$(( $(pick 's/^maxrss_kib: \([0-9]*\)/\1/p' "$lg" | sed 's/^-$/0/') * 1024 ))
            m_mem=$(( $(pick 's/^maxrss_kib: \([0-9]*\)/\1/p' "$mg" | sed 's/^-$/0/') * 1024 ))
        else # the cgroup's peak: RSS and the page cache charged to it
            l_mem=$(pick 's/^cgroup: .* peak \([0-9]*\).*/\1/p' "$lg")
            m_mem=$(pick 's/^cgroup: .* peak \([0-9]*\).*/\1/p' "$mg")
        fi
        l_ids=$(pick 's/^gen_ids: //p' "$lg")
        m_ids=$(pick 's/^gen_ids: //p' "$mg")
        tok=same
        if [ "$l_ids" = - ] || [ "$m_ids" = - ]; then tok=-
        elif [ "$l_ids" != "$m_ids" ]; then tok=DIFF; status=1
        fi
        [ $mrc -ne 0 ] && { echo "note: moepager at $b: exit $mrc: $(grep -m1 -E 'error|Killed' "$mg")" >&2; status=1; }
        [ $lrc -ne 0 ] && { echo "note: llama.cpp at $b: exit $lrc (see $lg)" >&2; status=1; }
        printf '%-6s %-2s | %9s %9s %7s | %9s %9s %7s | %6s | %9s %9s | %s\n' "$b" "$r" \
            "$l_pp" "$m_pp" "$(ratio "$m_pp" "$l_pp")" "$l_tg" "$m_tg" "$(ratio "$m_tg" "$l_tg")" \
            "$hits" "$(mib "$l_mem")" "$(mib "$m_mem")" "$tok" | tee -a "$OUT/summary.txt"
    done
done
echo "summary: $OUT/summary.txt"
exit $status
