# Parity with llama.cpp for gpt-oss (issue 12): random mp-gen models (3-4 layers, 8 experts
# top-4, heads of 64, q/k/v/o biases, sinks, router and expert biases, YaRN factor 32 over
# 256 original positions, base 150000), the 64-token parity prompt (longer than the sliding
# window of 16, so the window mask is exercised in the prompt's tiled attention and in
# every decode step) and 32 greedy tokens:
#   max|engine - llama.cpp| / max|llama.cpp| <= 1e-4 for f32 (0 on AVX-512 today),
#   <= 1e-2 with MXFP4 experts, and the same greedy tokens;
# mixes: f32; MXFP4 experts with f32 / f16 / q8_0 elsewhere; a window pattern of 3 with the
# sliding layers' own rope base (rope.freq_base_swa); a 560-token prompt at -c 768 (two
# chunks, decode over a key view of 768: the split-KV path with the sink on its first range)
# and a 900-token one at -c 1024 (past llama.cpp's 768-cell sliding-window cache), also at -b 64
# (our sliding layers' 256 cells moving on under the prompt).
# A file quantised by llama.cpp itself (MXFP4_MOE) from the f32 model, mapped and streamed
# through a 4-expert cache. Then 32 MXFP4 experts top-4 streamed under --mem and from a pack must give the in-RAM
# run's logits and tokens byte for byte. Skips (77) without a built peer.
set -u
B=${MP_BUILD:-.}
S=${MP_SRC:-..}
. "$S/tests/helpers/parity.sh" || exit 1
PEER=$(mp_find_peer) || { echo "SKIP: no built llama.cpp peer (set MP_PEER, or run tools/test.sh, which builds one)"; exit 77; }
LL="$PEER/build/llama_logits"
for exe in moepager mp-gen mp-cmp-logits; do
    [ -x "$B/$exe" ] || { echo "FAIL: $B/$exe not built"; exit 1; }
done
T=$(mktemp -d "${TMPDIR:-/tmp}/mp-parity-gptoss.XXXXXX")
trap 'rm -rf "$T"' EXIT
IDS=$MP_PARITY_IDS

BASE="--arch gpt-oss --n-embd 256 --n-head 8 --n-head-kv 4 --head-dim 64 --n-ff 256 --n-layer 3
      --n-expert 8 --n-expert-used 4 --swa 16 --yarn 32 --yarn-orig 256 --rope-base 150000 --n-vocab 384
      --seed 11 -q"

fail=0
printf "%-10s %-12s %-12s %-8s\n" mix type eng/llama greedy32
run() { # NAME TYPE(tolerance) OPTS...
    local name=$1 type=$2; shift 2
    local m="$T/$name.gguf"
    # shellcheck disable=SC2086
    if ! "$B/mp-gen" $BASE "$@" -o "$m"; then echo "FAIL: mp-gen $name"; fail=1; return; fi
    local tol; tol=$(mp_parity_tol "$type")
    local lc eng out rc gl ge g
    lc=$("$LL" -m "$m" --ids "${RUN_IDS:-$IDS}" -n ${RUN_NGEN:-$MP_PARITY_NGEN} -t 2 ${RUN_CTX:-} --no-repack \
        --dump "$T/l.f32" 2>&1) || { echo "FAIL: llama_logits $name:"; echo "$lc" | tail -5; fail=1; return; }
    # shellcheck disable=SC2086
    eng=$("$B/moepager" logits -m "$m" --ids "${RUN_IDS:-$IDS}" -o "$T/e.f32" -n ${RUN_NGEN:-$MP_PARITY_NGEN} -t 2 \
        ${RUN_CTX:-} 2>"$T/e.err") || { echo "FAIL: moepager logits $name:"; cat "$T/e.err"; fail=1; return; }
    out=$("$B/mp-cmp-logits" "$T/e.f32" "$T/l.f32" --tol "$tol"); rc=$?
    gl=$(echo "$lc" | grep '^gen_ids:'); ge=$(echo "$eng" | grep '^gen_ids:')
    g=same
    if [ -z "$gl" ] || [ "$gl" != "$ge" ]; then g=DIFF; mp_parity_exact && fail=1; fi
    printf "%-10s %-12s %-12s %-8s\n" "$name" "$type" "$(echo "$out" | awk '{print $6}')" "$g"
    if [ $rc -ne 0 ]; then
        if [ "$type" = f32 ] || mp_parity_exact; then echo "FAIL: $name: $out (tol $tol)"; fail=1
        else echo "  (not SIMD-exact: reported only) $out"; fi
    fi
    [ "$g" = same ] || { echo "  llama.cpp $gl"; echo "  engine    $ge"; }
}
# shellcheck disable=SC2086
{
run f32 f32
run mx-f32 mxfp4 --expert-type mxfp4
run mx-f16 mxfp4 --type f16 --expert-type mxfp4
run mx-q8_0 mxfp4 --type q8_0 --expert-type mxfp4
run pat3 f32 --swa-pattern 3 --rope-base-swa 50000 --n-layer 4
run mx-pat3 mxfp4 --swa-pattern 3 --rope-base-swa 50000 --n-layer 4 --expert-type mxfp4
run mx-32x4 mxfp4 --type q8_0 --expert-type mxfp4 --n-ff 512 --n-layer 4 --n-expert 32
}
LIDS=1
for i in $(seq 1 559); do LIDS="$LIDS,$(( (i * 37 + 11) % 377 + 3 ))"; done
RUN_IDS=$LIDS RUN_NGEN=16 RUN_CTX="-c 768" run long-mx mxfp4 --expert-type mxfp4 --n-layer 2 --n-ctx 4096
# 900 + 16 tokens at -c 1024: past llama.cpp's sliding-window cache of pad(16 + 512, 256) = 768
# cells, whose cells it then reuses for new positions
for i in $(seq 560 899); do LIDS="$LIDS,$(( (i * 37 + 11) % 377 + 3 ))"; done
RUN_IDS=$LIDS RUN_NGEN=16 RUN_CTX="-c 1024" run long900 mxfp4 --expert-type mxfp4 --n-layer 2 --n-ctx 4096
# the same at -b 64 on 4 layers (pattern 3): the sliding layers keep 256 KV cells (window
# 16 + batch 64, aligned; inspect shows it), which move on 4 times in the prompt
RUN_IDS=$LIDS RUN_NGEN=16 RUN_CTX="-c 1024 -b 64" run long900-b64 mxfp4 --expert-type mxfp4 --n-layer 4 \
    --swa-pattern 3 --n-ctx 4096
w=$("$B/moepager" inspect -m "$T/long900-b64.gguf" -c 1024 -b 64 2>&1 | grep '^sliding window:')
echo "$w"
case "$w" in *"16 tokens on 3 of 4 layers, 256 KV cells each"*) ;; *) echo "FAIL: inspect: '$w'"; fail=1 ;; esac

# a file made by llama.cpp's own quantiser (llama_model_quantize, what llama-quantize runs)
# with MXFP4_MOE (ftype 38: the 3-D expert tensors in mxfp4, attention and output in q8_0)
# from the f32 model; mapped and with the experts streamed through a cache of 4 of 8 per layer
BINS="$PEER/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64"
INC="$PEER/build/llama.cpp-src"
if command -v "${CC:-cc}" >/dev/null 2>&1 && [ -f "$INC/include/llama.h" ] && [ -f "$BINS/libllama.v0.5.0.so" ] &&
    "${CC:-cc}" -O1 -std=gnu11 -I"$INC/include" -I"$INC/ggml/include" -o "$T/pq" "$S/tests/helpers/peer/peer_quantize.c" \
        -L"$BINS" -l:libllama.v0.5.0.so -l:libggml.v0.5.0.so -l:libggml-base.so -Wl,-rpath,"$BINS" 2>"$T/cc.err"; then
    if "$T/pq" "$T/f32.gguf" "$T/mxfp4_moe.gguf" 38 >"$T/q.log" 2>&1; then
        types=$(grep -o 'converting to [a-z0-9_A-Z]*' "$T/q.log" | awk '{print $3}' | sort | uniq -c | awk '{print $2 " x" $1}' | paste -sd, -)
        echo "llama-quantize MXFP4_MOE: $types"
        for extra in "" "--cache-experts 4"; do
            lc=$("$LL" -m "$T/mxfp4_moe.gguf" --ids "$IDS" -n $MP_PARITY_NGEN -t 2 --no-repack --dump "$T/l.f32" 2>&1) ||
                { echo "FAIL: llama_logits mxfp4_moe"; fail=1; break; }
            # shellcheck disable=SC2086
            eng=$("$B/moepager" logits -m "$T/mxfp4_moe.gguf" --ids "$IDS" -o "$T/e.f32" -n $MP_PARITY_NGEN -t 2 $extra \
                2>"$T/e.err") || { echo "FAIL: moepager mxfp4_moe $extra"; cat "$T/e.err"; fail=1; break; }
            if [ -n "$extra" ] && ! grep -q "expert cache:.*[1-9][0-9]* misses" "$T/e.err"; then
                echo "FAIL: mxfp4_moe $extra: no expert was read through the cache"; fail=1
            fi
            out=$("$B/mp-cmp-logits" "$T/e.f32" "$T/l.f32" --tol "$(mp_parity_tol mxfp4)"); rc=$?
            gl=$(echo "$lc" | grep '^gen_ids:'); ge=$(echo "$eng" | grep '^gen_ids:')
            printf "%-10s %-12s %-12s %-8s\n" "quantize" "mxfp4_moe${extra:+ cached}" "$(echo "$out" | awk '{print $6}')" \
                "$([ -n "$gl" ] && [ "$gl" = "$ge" ] && echo same || echo DIFF)"
            if [ $rc -ne 0 ]; then
                if mp_parity_exact; then echo "FAIL: mxfp4_moe $extra: $out"; fail=1; else echo "  (not SIMD-exact: reported only) $out"; fi
            fi
            if { [ -z "$gl" ] || [ "$gl" != "$ge" ]; } && mp_parity_exact; then fail=1; fi
        done
    else
        echo "FAIL: peer quantise MXFP4_MOE:"; tail -3 "$T/q.log"; fail=1
    fi
else
    echo "note: no C compiler or peer headers/libllama: skipped the llama-quantize MXFP4_MOE file"
fi

# streamed: 32 MXFP4 experts top-4 (4 layers) under a budget that holds a few of them;
# then the same from a pack
m="$T/stream.gguf"
# shellcheck disable=SC2086
"$B/mp-gen" $BASE --type q8_0 --expert-type mxfp4 --n-ff 512 --n-layer 4 --n-expert 32 -o "$m" ||
    { echo "FAIL: mp-gen stream"; exit 1; }
ram=$("$B/moepager" logits -m "$m" --ids "$IDS" -o "$T/ram.f32" -n 16 -t 2 2>"$T/e.err") || { cat "$T/e.err"; exit 1; }
mem=$("$B/moepager" logits -m "$m" --ids "$IDS" -o "$T/mem.f32" -n 16 -t 2 --mem 48M 2>"$T/e.err") ||
    { echo "FAIL: streamed run:"; cat "$T/e.err"; exit 1; }
grep -q "expert cache:" "$T/e.err" || { echo "FAIL: the --mem run did not stream its experts"; cat "$T/e.err"; fail=1; }
if cmp -s "$T/ram.f32" "$T/mem.f32" && [ "$(echo "$ram" | grep '^gen_ids:')" = "$(echo "$mem" | grep '^gen_ids:')" ]; then
    echo "streamed (--mem 48M): logits and 16 greedy tokens identical to the in-RAM run"
else echo "FAIL: streamed logits or tokens differ from the in-RAM run"; fail=1; fi
"$B/moepager" pack "$m" -o "$T/stream.moepack" -q >/dev/null 2>"$T/e.err" || { echo "FAIL: pack"; cat "$T/e.err"; exit 1; }
pk=$("$B/moepager" logits -m "$T/stream.moepack" --ids "$IDS" -o "$T/pack.f32" -n 16 -t 2 --mem 48M 2>"$T/e.err") ||
    { echo "FAIL: pack run:"; cat "$T/e.err"; exit 1; }
if cmp -s "$T/ram.f32" "$T/pack.f32" && [ "$(echo "$ram" | grep '^gen_ids:')" = "$(echo "$pk" | grep '^gen_ids:')" ]; then
    echo "packed, streamed: identical to the in-RAM run"
else echo "FAIL: the pack's logits or tokens differ from the in-RAM run"; fail=1; fi
exit $fail
