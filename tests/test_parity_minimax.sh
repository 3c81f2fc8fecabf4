# Parity with llama.cpp for minimax-m2 (MiniMax-M2; issue 13 item 4): random mp-gen
# models with q/k RMS norms over the whole projected q (n_head * head_dim) and k
# (n_head_kv * head_dim) vectors, n_head * head_dim != n_embd, partial NEOX rope
# (n_rot = head_dim / 2, as MiniMax-M2's 64 of 128), sigmoid routing with the required
# exp_probs_b selection bias and renormalised weights; the 64-token parity prompt and
# 32 greedy tokens:
#   max|engine - llama.cpp| / max|llama.cpp| <= 1e-4 for f32, <= 1e-2 for the quantised
#   types (0 for all on AVX-512 today), and the same greedy tokens; in f32 the
#   double-precision reference (tests/helpers/ref_forward.c) against llama.cpp too (<= 1e-4);
# the prompt in one chunk and in chunks of 16 and 7 (-b, both sides); softmax gating
# (the key's other value); MiniMax-M2's router shape (256 experts top-8); a file
# quantised by llama.cpp's own quantiser (Q4_K_M); the 256-expert model with its
# experts streamed under --mem, and from a pack, byte for byte the in-RAM logits.
# Skips (77) without a built peer.
set -u
B=${MP_BUILD:-.}
S=${MP_SRC:-..}
. "$S/tests/helpers/parity.sh" || exit 1
PEER=$(mp_find_peer) || { echo "SKIP: no built llama.cpp peer (set MP_PEER, or run tools/test.sh, which builds one)"; exit 77; }
LL="$PEER/build/llama_logits"
for exe in moepager mp-gen mp-cmp-logits mp-ref-logits; do
    [ -x "$B/$exe" ] || { echo "FAIL: $B/$exe not built"; exit 1; }
done
T=$(mktemp -d "${TMPDIR:-/tmp}/mp-parity-minimax.XXXXXX")
trap 'rm -rf "$T"' EXIT
IDS=$MP_PARITY_IDS

# head_dim 64 x 8 heads = 512 != n_embd 256; n_rot 32 of 64
BASE="--arch minimax-m2 --n-embd 256 --n-head 8 --n-head-kv 2 --head-dim 64 --n-ff 256
      --n-layer 3 --n-expert 16 --n-expert-used 4 --n-vocab 384 --seed 11 -q"
fail=0
printf "%-10s %-8s %-6s %-12s %-8s %-12s\n" model type batch eng/llama greedy32 ref/llama
check() { # NAME TYPE FILE BATCH
    local name=$1 type=$2 m=$3 nb=$4
    local tol; tol=$(mp_parity_tol "$type") # 1e-4 f32, 1e-2 otherwise (scalar/capped builds: 3e-3, 5e-2)
    local lc eng out rc gl ge g
    lc=$("$LL" -m "$m" --ids "$IDS" -n $MP_PARITY_NGEN -t 2 -b "$nb" --no-repack --dump "$T/l.f32" 2>&1) ||
        { echo "FAIL: llama_logits $name $type:"; echo "$lc" | tail -5; fail=1; return; }
    eng=$("$B/moepager" logits -m "$m" --ids "$IDS" -o "$T/e.f32" -n $MP_PARITY_NGEN -t 2 -b "$nb" 2>"$T/e.err") ||
        { echo "FAIL: moepager logits $name $type:"; cat "$T/e.err"; fail=1; return; }
    out=$("$B/mp-cmp-logits" "$T/e.f32" "$T/l.f32" --tol $tol); rc=$?
    gl=$(echo "$lc" | grep '^gen_ids:'); ge=$(echo "$eng" | grep '^gen_ids:')
    g=same
    if [ -z "$gl" ] || [ "$gl" != "$ge" ]; then g=DIFF; mp_parity_exact && fail=1; fi
    # f32, whole prompt: the double-precision reference against llama.cpp too
    local rr=- rout
    if [ "$type" = f32 ] && [ "$nb" = 512 ]; then
        if "$B/mp-ref-logits" -m "$m" --ids "$IDS" -o "$T/r.f32"; then
            rout=$("$B/mp-cmp-logits" "$T/r.f32" "$T/l.f32" --tol 1e-4) || { fail=1; echo "FAIL: ref vs llama.cpp $name: $rout"; }
            rr=$(echo "$rout" | awk '{print $6}')
        else
            fail=1; echo "FAIL: mp-ref-logits $name"
        fi
    fi
    printf "%-10s %-8s %-6s %-12s %-8s %-12s\n" "$name" "$type" "$nb" "$(echo "$out" | awk '{print $6}')" "$g" "$rr"
    [ $rc -eq 0 ] || { echo "FAIL: $name $type -b $nb: $out (tol $tol)"; fail=1; }
    [ "$g" = same ] || { echo "  llama.cpp $gl"; echo "  engine    $ge"; }
}
run() { # NAME TYPE "BATCHES" OPTS...
    local name=$1 type=$2 batches=$3; shift 3
    local m="$T/$name-$type.gguf" nb
    # shellcheck disable=SC2086
    "$B/mp-gen" $BASE --type "$type" "$@" -o "$m" || { echo "FAIL: mp-gen $name $type"; fail=1; return; }
    for nb in $batches; do check "$name" "$type" "$m" "$nb"; done
}
run mm f32 "512 16 7"
run mm f16 512
run mm q8_0 "512 16"
run mm q4_K 512
run mm q4_K_m "512 16"
run softmax f32 512 --gating softmax --n-rot 16
# MiniMax-M2's router: 256 experts, top-8 (2 layers, narrow experts to stay small)
M2="--n-layer 2 --n-expert 256 --n-expert-used 8 --n-ff 64"
run m2 q8_0 "512 16" $M2

# llama.cpp's own quantiser: Q4_K_M of the f32 file (its q4_K/q6_K mix)
BINS="$PEER/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64"
INC="$PEER/build/llama.cpp-src"
CC=${CC:-cc}
if command -v "$CC" >/dev/null 2>&1 && [ -f "$INC/include/llama.h" ] && [ -f "$BINS/libllama.v0.5.0.so" ]; then
    QZ="$T/peer-quantize"
    if "$CC" -O1 -std=gnu11 -I"$INC/include" -I"$INC/ggml/include" -o "$QZ" "$S/tests/helpers/peer/peer_quantize.c" \
            -L"$BINS" -l:libllama.v0.5.0.so -l:libggml.v0.5.0.so -l:libggml-base.so -Wl,-rpath,"$BINS" 2>"$T/cc.err"; then
        if "$QZ" "$T/mm-f32.gguf" "$T/peer-q4km.gguf" q4_K_M >"$T/q.log" 2>&1; then
            check peer-q4km q4_K_M "$T/peer-q4km.gguf" 512
        else
            echo "FAIL: peer quantise q4_K_M:"; tail -3 "$T/q.log"; fail=1
        fi
    else
        echo "FAIL: cannot build the peer quantiser:"; cat "$T/cc.err"; fail=1
    fi
else
    echo "(no C compiler or peer libllama: the llama-quantize file is left out)"
fi

# streamed: 256 experts top-8 under a budget of a few dozen per layer; then from a pack
m="$T/m2-q8_0.gguf"
[ -f "$m" ] || { echo "FAIL: no 256-expert model"; exit 1; }
"$B/moepager" logits -m "$m" --ids "$IDS" -o "$T/ram.f32" -n 8 -t 2 -b 16 >/dev/null 2>"$T/e.err" || { cat "$T/e.err"; exit 1; }
"$B/moepager" logits -m "$m" --ids "$IDS" -o "$T/mem.f32" -n 8 -t 2 -b 16 --mem 30M >/dev/null 2>"$T/e.err" ||
    { echo "FAIL: streamed run:"; cat "$T/e.err"; exit 1; }
grep -q "expert cache:" "$T/e.err" || { echo "FAIL: the --mem run did not stream its experts"; cat "$T/e.err"; fail=1; }
grep "expert cache:" "$T/e.err" | head -1
if cmp -s "$T/ram.f32" "$T/mem.f32"; then echo "streamed (--mem 30M): identical to the in-RAM run"
else echo "FAIL: streamed logits differ from the in-RAM run"; fail=1; fi
"$B/moepager" pack "$m" -o "$T/m2.moepack" -q >/dev/null 2>"$T/e.err" || { echo "FAIL: pack"; cat "$T/e.err"; exit 1; }
"$B/moepager" logits -m "$T/m2.moepack" --ids "$IDS" -o "$T/pack.f32" -n 8 -t 2 -b 16 --mem 30M >/dev/null 2>"$T/e.err" ||
    { echo "FAIL: pack run:"; cat "$T/e.err"; exit 1; }
if cmp -s "$T/ram.f32" "$T/pack.f32"; then echo "packed, streamed: identical to the in-RAM run"
else echo "FAIL: the pack's logits differ from the in-RAM run"; fail=1; fi
exit $fail
