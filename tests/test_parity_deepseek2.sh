# Parity with llama.cpp for deepseek2 and glm4moe (issue 11): random mp-gen models of the
# option mixes below, the 64-token parity prompt and 32 greedy tokens:
#   max|engine - llama.cpp| / max|llama.cpp| <= 1e-4 for f32 (0 on AVX-512 today),
#   <= 1e-2 for the quantised types, and the same greedy tokens;
# the last model (fused ffn_gate_up_exps) also runs with its experts streamed under
# --mem, and from a pack, and must give the in-RAM run's logits byte for byte.
# Mixes: V2-Lite-like (attn_q, softmax, dense lead, YaRN mscale 0.707), V3-like
# (q LoRA, sigmoid + exp_probs_b + groups, weights norm and scale 2.5, YaRN),
# V2-like older attn_kv_b layout (softmax, groups, scale 16), each in f32, plus
# the V3-like mix in f16 / q8_0 / q4_K / q4_K_m; glm4moe without and with
# (GLM-4.5-like) q/k/v biases and q/k norms, GQA, partial rotary, an MTP block,
# in f32 and the quantised types. Skips (77) without a built peer.
set -u
B=${MP_BUILD:-.}
S=${MP_SRC:-..}
. "$S/tests/helpers/parity.sh" || exit 1
PEER=$(mp_find_peer) || { echo "SKIP: no built llama.cpp peer (set MP_PEER, or run tools/test.sh, which builds one)"; exit 77; }
LL="$PEER/build/llama_logits"
for exe in moepager mp-gen mp-cmp-logits mp-ref-logits; do
    [ -x "$B/$exe" ] || { echo "FAIL: $B/$exe not built"; exit 1; }
done
T=$(mktemp -d "${TMPDIR:-/tmp}/mp-parity-ds2.XXXXXX")
trap 'rm -rf "$T"' EXIT
IDS=$MP_PARITY_IDS

BASE="--arch deepseek2 --n-embd 256 --n-head 4 --n-ff 512 --n-ff-exp 256 --n-layer 3 --n-dense-lead 1
      --n-expert 8 --n-expert-used 3 --n-vocab 384 --seed 11 -q"
V2LITE="--yarn 40 --yarn-orig 512 --yarn-log-mul 0.0707"
V3="--q-lora 256 --kv-lora 256 --v-dim 64 --gating sigmoid --probs-bias --n-group 4 --n-group-used 2
    --weights-norm --weights-scale 2.5 --yarn 40 --yarn-orig 256 --yarn-log-mul 0.1"
V2KVB="--mla-kv-b --q-lora 256 --gating softmax --n-group 4 --n-group-used 2 --weights-scale 16"

fail=0
printf "%-8s %-8s %-12s %-8s %-12s\n" mix type eng/llama greedy32 ref/llama
run() { # NAME TYPE OPTS...
    local name=$1 type=$2; shift 2
    local m="$T/$name-$type.gguf"
    # shellcheck disable=SC2086
    if ! "$B/mp-gen" $BASE --type "$type" "$@" -o "$m"; then echo "FAIL: mp-gen $name $type"; fail=1; return; fi
    local tol; tol=$(mp_parity_tol "$type") # 1e-4 f32, 1e-2 (3e-2 scalar/capped builds) otherwise
    local lc eng out rc gl ge g
    lc=$("$LL" -m "$m" --ids "$IDS" -n $MP_PARITY_NGEN -t 2 --no-repack --dump "$T/l.f32" 2>&1) ||
        { echo "FAIL: llama_logits $name $type:"; echo "$lc" | tail -5; fail=1; return; }
    eng=$("$B/moepager" logits -m "$m" --ids "$IDS" -o "$T/e.f32" -n $MP_PARITY_NGEN -t 2 2>"$T/e.err") ||
        { echo "FAIL: moepager logits $name $type:"; cat "$T/e.err"; fail=1; return; }
    out=$("$B/mp-cmp-logits" "$T/e.f32" "$T/l.f32" --tol $tol); rc=$?
    gl=$(echo "$lc" | grep '^gen_ids:'); ge=$(echo "$eng" | grep '^gen_ids:')
    g=same
    if [ -z "$gl" ] || [ "$gl" != "$ge" ]; then g=DIFF; mp_parity_exact && fail=1; fi
    # f32: the double-precision reference too (2e-4 for the YaRN-scaled V3-like mix,
    # see test_forward_ref.sh)
    local rr=- rtol=1e-4 rout
    [ "$name" = v3 ] && rtol=2e-4
    if [ "$type" = f32 ]; then
        if "$B/mp-ref-logits" -m "$m" --ids "$IDS" -o "$T/r.f32"; then
            rout=$("$B/mp-cmp-logits" "$T/r.f32" "$T/l.f32" --tol $rtol) || { fail=1; echo "FAIL: ref vs llama.cpp $name: $rout"; }
            rr=$(echo "$rout" | awk '{print $6}')
        else
            fail=1; echo "FAIL: mp-ref-logits $name"
        fi
    fi
    printf "%-8s %-8s %-12s %-8s %-12s\n" "$name" "$type" "$(echo "$out" | awk '{print $6}')" "$g" "$rr"
    [ $rc -eq 0 ] || { echo "FAIL: $name $type: $out (tol $tol)"; fail=1; }
    [ "$g" = same ] || { echo "  llama.cpp $gl"; echo "  engine    $ge"; }
}
# shellcheck disable=SC2086
{
run v2lite f32 $V2LITE
run v3 f32 $V3
run v2kvb f32 $V2KVB
for t in f16 q8_0 q4_K q4_K_m; do run v3 $t $V3; done
BASE="--arch glm4moe --n-embd 256 --n-head 4 --n-head-kv 2 --head-dim 128 --n-ff 512 --n-ff-exp 256 --n-layer 3
      --n-dense-lead 1 --n-expert 8 --n-expert-used 3 --weights-norm --weights-scale 2.5 --n-nextn 1 --n-vocab 384
      --seed 11 -q"
run glm f32 --n-head-kv 4
for t in f32 f16 q8_0 q4_K_m; do run glm45 $t --attn-bias --qk-norm; done
}

BASE="--arch deepseek2 --n-embd 256 --n-head 4 --n-ff 512 --n-ff-exp 256 --n-layer 3 --n-dense-lead 1
      --n-expert 8 --n-expert-used 3 --n-vocab 384 --seed 11 -q"
# streamed: 64 experts top-6, 2 shared, groups 8/3, fused ffn_gate_up_exps, under a
# budget that holds ~7% of the experts; then the same from a pack
m="$T/stream.gguf"
# shellcheck disable=SC2086
"$B/mp-gen" $BASE $V3 --type q8_0 --n-ff-exp 512 --n-layer 4 --n-expert 64 --n-expert-used 6 --n-shared 2 \
    --n-group 8 --n-group-used 3 --fused-gate-up -o "$m" || { echo "FAIL: mp-gen stream"; exit 1; }
run_file() { # NAME FILE: parity of an existing file against llama.cpp
    local lc eng out rc gl ge
    lc=$("$LL" -m "$2" --ids "$IDS" -n $MP_PARITY_NGEN -t 2 --no-repack --dump "$T/l.f32" 2>&1) ||
        { echo "FAIL: llama_logits $1"; echo "$lc" | tail -5; fail=1; return; }
    eng=$("$B/moepager" logits -m "$2" --ids "$IDS" -o "$T/e.f32" -n $MP_PARITY_NGEN -t 2 2>"$T/e.err") ||
        { echo "FAIL: moepager logits $1"; cat "$T/e.err"; fail=1; return; }
    out=$("$B/mp-cmp-logits" "$T/e.f32" "$T/l.f32" --tol "$(mp_parity_tol q8_0)"); rc=$?
    gl=$(echo "$lc" | grep '^gen_ids:'); ge=$(echo "$eng" | grep '^gen_ids:')
    printf "%-8s %-8s %-12s %-8s\n" "$1" q8_0 "$(echo "$out" | awk '{print $6}')" "$([ "$gl" = "$ge" ] && echo same || echo DIFF)"
    # scalar / ISA-capped builds sum in another order; on this 64-expert sigmoid +
    # group model one flipped pick then moves the logits by ~7e-2 (measured):
    # reported only there
    if [ $rc -ne 0 ]; then
        if mp_parity_exact; then echo "FAIL: $1: $out"; fail=1; else echo "  (not SIMD-exact: reported only) $out"; fi
    fi
    if [ "$gl" != "$ge" ] && mp_parity_exact; then fail=1; fi
}
run_file fused "$m"
"$B/moepager" logits -m "$m" --ids "$IDS" -o "$T/ram.f32" -n 8 -t 2 >/dev/null 2>"$T/e.err" || { cat "$T/e.err"; exit 1; }
"$B/moepager" logits -m "$m" --ids "$IDS" -o "$T/mem.f32" -n 8 -t 2 --mem 60M >/dev/null 2>"$T/e.err" ||
    { echo "FAIL: streamed run:"; cat "$T/e.err"; exit 1; }
grep -q "expert cache:" "$T/e.err" || { echo "FAIL: the --mem run did not stream its experts"; cat "$T/e.err"; fail=1; }
if cmp -s "$T/ram.f32" "$T/mem.f32"; then echo "streamed (--mem 60M): identical to the in-RAM run"
else echo "FAIL: streamed logits differ from the in-RAM run"; fail=1; fi
"$B/moepager" pack "$m" -o "$T/stream.moepack" -q >/dev/null 2>"$T/e.err" || { echo "FAIL: pack"; cat "$T/e.err"; exit 1; }
"$B/moepager" logits -m "$T/stream.moepack" --ids "$IDS" -o "$T/pack.f32" -n 8 -t 2 --mem 60M >/dev/null 2>"$T/e.err" ||
    { echo "FAIL: pack run:"; cat "$T/e.err"; exit 1; }
if cmp -s "$T/ram.f32" "$T/pack.f32"; then echo "packed, streamed: identical to the in-RAM run"
else echo "FAIL: the pack's logits differ from the in-RAM run"; fail=1; fi
# a 560-token prompt (two chunks) and 16 decode steps over a key view of 768 at -c 768,
# MLA value heads of 512: llama.cpp's split-KV decode path
m="$T/long.gguf"
"$B/mp-gen" --arch deepseek2 --n-embd 256 --n-head 4 --n-ff 512 --n-ff-exp 256 --n-layer 2 --n-dense-lead 1 \
    --n-expert 8 --n-expert-used 2 --kv-lora 512 --q-lora 256 --gating sigmoid --probs-bias --weights-norm --yarn 40 \
    --yarn-orig 256 --yarn-log-mul 0.1 --n-vocab 384 --seed 5 -q -o "$m" || { echo "FAIL: mp-gen long"; exit 1; }
LIDS=1
for i in $(seq 1 559); do LIDS="$LIDS,$(( (i * 37 + 11) % 377 + 3 ))"; done
lc=$("$LL" -m "$m" --ids "$LIDS" -n 16 -t 2 -c 768 --no-repack --dump "$T/l.f32" 2>&1) || { echo "FAIL: llama_logits long"; exit 1; }
eng=$("$B/moepager" logits -m "$m" --ids "$LIDS" -o "$T/e.f32" -n 16 -t 2 -c 768 2>"$T/e.err") ||
    { echo "FAIL: moepager long"; cat "$T/e.err"; exit 1; }
# (scalar builds: 2.8e-4 measured, their other summation order over 560 positions;
# reported only there, like their greedy tokens)
out=$("$B/mp-cmp-logits" "$T/e.f32" "$T/l.f32" --tol 1e-4) ||
    if mp_parity_exact; then echo "FAIL: long: $out"; fail=1; else echo "  (not SIMD-exact: reported only) $out"; fi
gl=$(echo "$lc" | grep '^gen_ids:'); ge=$(echo "$eng" | grep '^gen_ids:')
echo "long (560 + 16 tokens, -c 768) f32: $(echo "$out" | awk '{print $6}'), greedy $([ -n "$gl" ] && [ "$gl" = "$ge" ] && echo same || echo DIFF)"
if [ -z "$gl" ] || [ "$gl" != "$ge" ]; then echo "  llama.cpp $gl"; echo "  engine    $ge"; mp_parity_exact && fail=1; fi

# glm4moe streamed: 64 experts top-6 with an MTP block, under --mem
m="$T/glm-stream.gguf"
"$B/mp-gen" --arch glm4moe --type q8_0 --n-embd 256 --n-head 4 --n-head-kv 2 --head-dim 128 --n-ff 512 --n-ff-exp 512 \
    --n-layer 4 --n-dense-lead 1 --n-expert 64 --n-expert-used 6 --attn-bias --qk-norm --weights-norm \
    --weights-scale 2.5 --n-nextn 1 --n-vocab 384 --seed 11 -q -o "$m" || { echo "FAIL: mp-gen glm stream"; exit 1; }
"$B/moepager" logits -m "$m" --ids "$IDS" -o "$T/ram.f32" -n 8 -t 2 >/dev/null 2>"$T/e.err" || { cat "$T/e.err"; exit 1; }
"$B/moepager" logits -m "$m" --ids "$IDS" -o "$T/mem.f32" -n 8 -t 2 --mem 48M >/dev/null 2>"$T/e.err" ||
    { echo "FAIL: glm4moe streamed run:"; cat "$T/e.err"; exit 1; }
grep -q "expert cache:" "$T/e.err" || { echo "FAIL: the glm4moe --mem run did not stream"; fail=1; }
if cmp -s "$T/ram.f32" "$T/mem.f32"; then echo "glm4moe streamed (--mem 48M): identical to the in-RAM run"
else echo "FAIL: glm4moe streamed logits differ from the in-RAM run"; fail=1; fi
# its pack leaves the MTP block out (never loaded) and gives the same logits
"$B/moepager" pack "$m" -o "$T/glm.moepack" -q >/dev/null 2>"$T/e.err" || { echo "FAIL: glm pack"; cat "$T/e.err"; exit 1; }
"$B/moepager" logits -m "$T/glm.moepack" --ids "$IDS" -o "$T/pack.f32" -n 8 -t 2 --mem 48M >/dev/null 2>"$T/e.err" ||
    { echo "FAIL: glm pack run:"; cat "$T/e.err"; exit 1; }
if cmp -s "$T/ram.f32" "$T/pack.f32"; then echo "glm4moe packed, streamed: identical to the in-RAM run"
else echo "FAIL: the glm4moe pack's logits differ"; fail=1; fi
psz=$(stat -c %s "$T/glm.moepack"); gsz=$(stat -c %s "$m")
# the MTP block holds 1/5 of this model's experts: the pack must be smaller than the GGUF
[ "$psz" -lt "$gsz" ] || { echo "FAIL: the glm4moe pack ($psz bytes) is not smaller than the GGUF ($gsz): MTP block packed?"; fail=1; }
exit $fail
