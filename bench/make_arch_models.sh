#!/usr/bin/env bash
# The benchmark files of issues 11 and 12, random weights from mp-gen (not in git):
#   ds2-lite-shape.gguf   DeepSeek-V2-Lite: 27 layers (first dense, FFN 10944), 64 routed
#                         + 2 shared experts top-6, expert FFN 1408, n_embd 2048, 16 heads,
#                         MLA kv_lora 512 (rope 64, nope 128, v 128), no q LoRA, YaRN 40
#                         over 4096, vocab 102400; Q4_K_M (q4_K, with q6_K where the mix
#                         asks; rows of 1408 / 10944 are no multiple of 256, so those down
#                         projections fall back to q8_0 as llama-quantize falls back) ~10.6 GB
#   gptoss-20b-shape.gguf gpt-oss-20b: 24 layers, 32 experts top-4, n_embd 2880, expert FFN
#                         2880, 64 heads / 8 kv heads of 64, window 128 on alternate layers,
#                         YaRN 32 over 4096, rope base 150000, vocab 201088; experts MXFP4,
#                         the rest q8_0 ~12.3 GB
#   kimi-shape.gguf       Kimi-K2 / DeepSeek-V3 scaled down: 17 layers (first dense, FFN
#                         8192), 256 routed experts top-8 + 1 shared, expert FFN 512, sigmoid
#                         gating with exp_probs_b, 8 groups / 4 used, weights normalised and
#                         scaled 2.827, MLA with q LoRA 768, kv_lora 512, n_embd 2048,
#                         16 heads, vocab 163840; Q4_K_M ~9.3 GB
# Usage: bench/make_arch_models.sh [OUTDIR (/work/models)] [NAME...]  (mp-gen from $MP_BUILD
# or ./build; each file is written then checked with mp-gen --check). Keep >= 15 GB free.
set -eu
B=${MP_BUILD:-$(dirname "$0")/../build}
OUT=${1:-/work/models}; shift || true
names=${*:-ds2-lite-shape gptoss-20b-shape kimi-shape}
gen() { # NAME OPTIONS...
    local n=$1; shift
    echo "== $n: mp-gen $*"
    /usr/bin/time -v "$B/mp-gen" "$@" --name "$n" -o "$OUT/$n.gguf" 2>&1 | grep -v '^mp-gen: *[0-9]*%' |
        grep -E 'wrote|Maximum resident|Elapsed|error|mp-gen:' || true
    "$B/mp-gen" --check "$OUT/$n.gguf" 2>&1 | tail -4 || true
}
for n in $names; do
    case $n in
    ds2-lite-shape)
        gen "$n" --arch deepseek2 --type q4_K_m --fit-types --n-embd 2048 --n-head 16 --n-ff 10944 \
            --n-ff-exp 1408 --n-layer 27 --n-dense-lead 1 --n-expert 64 --n-expert-used 6 --n-shared 2 \
            --kv-lora 512 --rope-dim 64 --nope-dim 128 --v-dim 128 --gating softmax --weights-scale 1.0 \
            --yarn 40 --yarn-orig 4096 --yarn-log-mul 0.0707 --n-ctx 163840 --n-vocab 102400 --seed 21 ;;
    gptoss-20b-shape)
        gen "$n" --arch gpt-oss --type q8_0 --expert-type mxfp4 --n-embd 2880 --n-head 64 --n-head-kv 8 \
            --head-dim 64 --n-ff 2880 --n-ff-exp 2880 --n-layer 24 --n-expert 32 --n-expert-used 4 \
            --swa 128 --rope-base 150000 --yarn 32 --yarn-orig 4096 --n-ctx 131072 --n-vocab 201088 --seed 22 ;;
    kimi-shape)
        gen "$n" --arch deepseek2 --type q4_K_m --fit-types --n-embd 2048 --n-head 16 --n-ff 8192 \
            --n-ff-exp 512 --n-layer 17 --n-dense-lead 1 --n-expert 256 --n-expert-used 8 --n-shared 1 \
            --q-lora 768 --kv-lora 512 --rope-dim 64 --nope-dim 128 --v-dim 128 --gating sigmoid --probs-bias \
            --n-group 8 --n-group-used 4 --weights-norm --weights-scale 2.827 \
            --yarn 32 --yarn-orig 4096 --yarn-log-mul 0.1 --n-ctx 131072 --n-vocab 163840 --seed 23 ;;
    *) echo "unknown model $n"; exit 2 ;;
    esac
done
