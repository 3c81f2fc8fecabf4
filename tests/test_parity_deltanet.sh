# Parity with llama.cpp for the hybrid Gated DeltaNet archs qwen3next and qwen35moe
# (issue 13 items 1-3): random mp-gen models where 3 of every 4 layers are DeltaNet
# (conv state + delta-rule state) and every 4th gated attention; the 64-token parity
# prompt and 32 greedy tokens, in one chunk and in several (-b 24 and -b 7: the chunked
# DeltaNet prefill meets the one-token decode, and conv states carry across chunks):
#   max|engine - llama.cpp| / max|llama.cpp| <= 1e-4 for f32, <= 1e-2 for the quantised
#   types (0 for all on AVX-512 today), and the same greedy tokens;
# 2 k heads / 4 v heads (qwen3next repeats each k head over 2 v heads, qwen35moe tiles
# them), and 1 / 2 with 128-wide states; qwen3next's legacy ssm_in; files quantised by llama.cpp's own quantiser
# (Q4_K_M); the experts streamed under --mem, and from a pack, byte for byte the in-RAM
# logits. Skips (77) without a built peer.
set -u
B=${MP_BUILD:-.}
S=${MP_SRC:-..}
. "$S/tests/helpers/parity.sh" || exit 1
PEER=$(mp_find_peer) || { echo "SKIP: no built llama.cpp peer (set MP_PEER, or run tools/test.sh, which builds one)"; exit 77; }
LL="$PEER/build/llama_logits"
for exe in moepager mp-gen mp-cmp-logits; do
    [ -x "$B/$exe" ] || { echo "FAIL: $B/$exe not built"; exit 1; }
done
T=$(mktemp -d "${TMPDIR:-/tmp}/mp-parity-gdn.XXXXXX")
trap 'rm -rf "$T"' EXIT
IDS=$MP_PARITY_IDS

SMALL="--n-embd 256 --n-head 4 --n-head-kv 2 --head-dim 64 --n-ff 256 --n-ff-exp 128 --n-ff-shexp 192
       --n-layer 4 --n-expert 8 --n-expert-used 2 --n-vocab 384 --seed 11 -q"
WIDE="--n-embd 256 --n-head 2 --n-head-kv 1 --head-dim 128 --n-ff 256 --n-ff-exp 256 --n-layer 4
      --n-expert 8 --n-expert-used 3 --ssm-state 128 --ssm-k-heads 1 --ssm-v-heads 2 --n-vocab 384 --seed 12 -q"
fail=0
printf "%-10s %-5s %-8s %-5s %-12s %-8s\n" arch shape type -b eng/llama greedy32
check() { # ARCH SHAPE TYPE FILE BATCH
    local arch=$1 shape=$2 type=$3 m=$4 b=$5
    local tol; tol=$(mp_parity_tol "$type")
    local lc eng out rc gl ge g
    lc=$("$LL" -m "$m" --ids "$IDS" -n $MP_PARITY_NGEN -t 2 -b "$b" --no-repack --dump "$T/l.f32" 2>&1) ||
        { echo "FAIL: llama_logits $arch $shape $type:"; echo "$lc" | tail -5; fail=1; return; }
    eng=$("$B/moepager" logits -m "$m" --ids "$IDS" -o "$T/e.f32" -n $MP_PARITY_NGEN -t 2 -b "$b" 2>"$T/e.err") ||
        { echo "FAIL: moepager logits $arch $shape $type:"; cat "$T/e.err"; fail=1; return; }
    out=$("$B/mp-cmp-logits" "$T/e.f32" "$T/l.f32" --tol $tol); rc=$?
    gl=$(echo "$lc" | grep '^gen_ids:'); ge=$(echo "$eng" | grep '^gen_ids:')
    g=same
    if [ -z "$gl" ] || [ "$gl" != "$ge" ]; then g=DIFF; mp_parity_exact && fail=1; fi
    printf "%-10s %-5s %-8s %-5s %-12s %-8s\n" "$arch" "$shape" "$type" "$b" "$(echo "$out" | awk '{print $6}')" "$g"
    [ $rc -eq 0 ] || { echo "FAIL: $arch $shape $type -b $b: $out (tol $tol)"; fail=1; }
    [ "$g" = same ] || { echo "  llama.cpp $gl"; echo "  engine    $ge"; }
}
run() { # ARCH SHAPE TYPE BATCHES...
    local arch=$1 shape=$2 type=$3; shift 3
    local m="$T/$arch-$shape-$type.gguf" opts=$SMALL
    [ "$shape" = wide ] && opts=$WIDE
    [ "$shape" = ssmin ] && opts="$SMALL --ssm-legacy"
    # shellcheck disable=SC2086
    "$B/mp-gen" --arch "$arch" $opts --type "$type" -o "$m" || { echo "FAIL: mp-gen $arch $shape $type"; fail=1; return; }
    for b in "$@"; do check "$arch" "$shape" "$type" "$m" "$b"; done
}
for a in qwen3next qwen35moe; do
    run $a small f32 512 24 7
    run $a small q8_0 512 24
    run $a wide f32 512 24
    run $a wide q4_K 512 24
    run $a wide q4_K_m 24
done
# qwen3next's older files: one ssm_in per DeltaNet layer instead of attn_qkv + attn_gate
run qwen3next ssmin f32 24
run qwen3next ssmin q8_0 24

# llama.cpp's own quantiser: Q4_K_M of the wide f32 files (its q4_K/q5_K/q6_K/q8_0 mix;
# the conv taps and gate vectors stay f32)
BINS="$PEER/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64"
INC="$PEER/build/llama.cpp-src"
CC=${CC:-cc}
if command -v "$CC" >/dev/null 2>&1 && [ -f "$INC/include/llama.h" ] && [ -f "$BINS/libllama.v0.5.0.so" ]; then
    QZ="$T/peer-quantize"
    if "$CC" -O1 -std=gnu11 -I"$INC/include" -I"$INC/ggml/include" -o "$QZ" "$S/tests/helpers/peer/peer_quantize.c" \
            -L"$BINS" -l:libllama.v0.5.0.so -l:libggml.v0.5.0.so -l:libggml-base.so -Wl,-rpath,"$BINS" 2>"$T/cc.err"; then
        for a in qwen3next qwen35moe; do
            if "$QZ" "$T/$a-wide-f32.gguf" "$T/peer-$a-q4km.gguf" q4_K_M >"$T/q.log" 2>&1; then
                check "$a" peer q4_K_M "$T/peer-$a-q4km.gguf" 24
            else
                echo "FAIL: peer quantise $a q4_K_M:"; tail -3 "$T/q.log"; fail=1
            fi
        done
    else
        echo "FAIL: cannot build the peer quantiser:"; cat "$T/cc.err"; fail=1
    fi
else
    echo "(no C compiler or peer libllama: the llama-quantize files are left out)"
fi

# streamed: 16 experts top-2 under a budget of a few per layer; then from a pack
for a in qwen3next qwen35moe; do
    m="$T/stream-$a.gguf"
    # shellcheck disable=SC2086
    "$B/mp-gen" --arch $a $SMALL --n-expert 16 --n-ff-exp 512 --type q8_0 -o "$m" || { echo "FAIL: mp-gen stream"; exit 1; }
    "$B/moepager" logits -m "$m" --ids "$IDS" -o "$T/ram.f32" -n 8 -t 2 -b 24 >/dev/null 2>"$T/e.err" || { cat "$T/e.err"; exit 1; }
    "$B/moepager" logits -m "$m" --ids "$IDS" -o "$T/mem.f32" -n 8 -t 2 -b 24 --mem 32M >/dev/null 2>"$T/e.err" ||
        { echo "FAIL: streamed run:"; cat "$T/e.err"; exit 1; }
    grep -q "expert cache:" "$T/e.err" || { echo "FAIL: the --mem run did not stream its experts"; cat "$T/e.err"; fail=1; }
    grep "expert cache:" "$T/e.err" | head -1
    if cmp -s "$T/ram.f32" "$T/mem.f32"; then echo "$a streamed (--mem 32M): identical to the in-RAM run"
    else echo "FAIL: $a streamed logits differ from the in-RAM run"; fail=1; fi
    "$B/moepager" pack "$m" -o "$T/stream.moepack" -q >/dev/null 2>"$T/e.err" || { echo "FAIL: pack"; cat "$T/e.err"; exit 1; }
    "$B/moepager" logits -m "$T/stream.moepack" --ids "$IDS" -o "$T/pack.f32" -n 8 -t 2 -b 24 --mem 32M >/dev/null 2>"$T/e.err" ||
        { echo "FAIL: pack run:"; cat "$T/e.err"; exit 1; }
    if cmp -s "$T/ram.f32" "$T/pack.f32"; then echo "$a packed, streamed: identical to the in-RAM run"
    else echo "FAIL: $a: the pack's logits differ from the in-RAM run"; fail=1; fi
done
exit $fail
