#!/usr/bin/env bash
# mp-gen: small models of every architecture and weight type are written,
# re-read by our own GGUF reader (mp-gen --check: names, shapes, f32 norms and
# router, finite values/scales), are byte-identical for the same seed, reject
# bad shapes with a message naming the tensor, and (when a built llama.cpp is
# found) load in llama.cpp and give finite, non-degenerate logits.
# Exit 0 pass, 1 fail, 77 when mp-gen is not built.
set -u

BUILD=${MP_BUILD:-.}
SRC=${MP_SRC:-..}
GEN="$BUILD/mp-gen"
[ -x "$GEN" ] || { echo "SKIP: $GEN not built"; exit 77; }
OUT="$BUILD/gen-test"
rm -rf "$OUT" && mkdir -p "$OUT" || exit 1
VOCAB="$SRC/tests/data/vocab/ggml-vocab-llama-spm.gguf"

fail=0
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }

# Chunked fill == whole-tensor fill for every type; usage text exists.
"$GEN" --self-test || bad "mp-gen --self-test"
"$GEN" --help | grep -q -- "--vocab" || bad "mp-gen --help"

# V2-Lite-like widths that no 256-block divides (expert FFN 352, dense FFN 544,
# nope 32): with --fit-types those rows fall back to q8_0 as llama-quantize's do
FIT="--arch deepseek2 --type q4_K_m --n-embd 256 --n-head 2 --n-ff 544 --n-ff-exp 352 --n-layer 2
     --n-dense-lead 1 --n-expert 4 --n-expert-used 2 --kv-lora 256 --n-shared 2"
# name | options
MODELS=(
  "llama-f32|--arch llama --type f32"
  "llama-f16-tied|--arch llama --type f16 --tied-output"
  "llama-bf16|--arch llama --type bf16 --n-ff 96"
  "moe-q8_0|--arch llama-moe --type q8_0"
  "moe-q4_0|--arch llama-moe --type q4_0 --n-expert 8 --n-expert-used 2"
  "moe-q4_K_m-vocab|--arch llama-moe --type q4_K_m --n-embd 256 --n-ff 256 --n-layer 1 --vocab $VOCAB"
  "qwen3moe-q4_K|--arch qwen3moe --type q4_K --n-embd 256 --n-head 2 --n-head-kv 1 --head-dim 128 --n-ff 512 --n-ff-exp 256 --n-vocab 512"
  "qwen3moe-q8_0|--arch qwen3moe --type q8_0 --n-ff-exp 64"
  "olmoe-q6_K|--arch olmoe --type q6_K --n-embd 256 --n-ff 256 --n-head 4 --n-head-kv 4"
  "olmoe-q5_K|--arch olmoe --type q5_K --n-embd 256 --n-ff 256 --n-head 4 --n-head-kv 4 --expert-type q8_0"
  "deepseek2-lite-f16|--arch deepseek2 --type f16 --n-dense-lead 1 --n-layer 3 --yarn 40 --yarn-log-mul 0.0707"
  "deepseek2-v3-q4_K|--arch deepseek2 --type q4_K --n-embd 256 --n-head 4 --n-ff 512 --n-ff-exp 256 --kv-lora 256 --v-dim 64 --q-lora 256 --n-expert 8 --n-expert-used 3 --gating sigmoid --probs-bias --n-group 4 --n-group-used 2 --weights-norm --weights-scale 2.5 --fused-gate-up"
  "deepseek2-kvb-q8_0|--arch deepseek2 --type q8_0 --mla-kv-b --n-shared 2"
  "glm4moe-q8_0|--arch glm4moe --type q8_0 --n-head 2 --n-head-kv 1 --head-dim 64 --n-dense-lead 1 --n-layer 3 --attn-bias --qk-norm --n-nextn 1"
  "qwen2moe-q8_0|--arch qwen2moe --type q8_0 --n-head 4 --n-head-kv 2 --n-ff 128 --n-ff-exp 64 --n-ff-shexp 96 --n-expert 6 --n-expert-used 2"
  "qwen2moe-q4_K_m|--arch qwen2moe --type q4_K_m --n-embd 256 --n-head 2 --n-ff 512 --n-ff-exp 256 --n-expert 8 --n-expert-used 4"
  "gpt-oss-mxfp4|--arch gpt-oss --type q8_0 --expert-type mxfp4 --n-head 2 --n-head-kv 1 --head-dim 64 --n-layer 3 --swa 16 --yarn 32 --yarn-orig 256"
  "gpt-oss-f16|--arch gpt-oss --type f16 --n-layer 3 --swa-pattern 3 --rope-base-swa 10000"
  "deepseek2-fit-q4_K_m|$FIT --fit-types"
  "minimax-m2-q8_0|--arch minimax-m2 --type q8_0 --n-head 4 --n-head-kv 2 --head-dim 32 --n-ff 64 --n-expert 16 --n-expert-used 4"
  "minimax-m2-softmax-f16|--arch minimax-m2 --type f16 --n-rot 8 --gating softmax"
  "qwen3next-q8_0|--arch qwen3next --type q8_0 --n-head 4 --n-head-kv 2 --head-dim 32 --n-ff 128 --n-ff-exp 64 --n-ff-shexp 96 --n-expert 6 --n-expert-used 2 --n-layer 4"
  "qwen35moe-q4_K|--arch qwen35moe --type q4_K --n-embd 256 --n-head 2 --n-head-kv 1 --head-dim 128 --n-ff 256 --n-ff-exp 256 --n-expert 8 --n-expert-used 2 --n-layer 3 --full-attn 3 --ssm-state 128 --ssm-k-heads 1 --ssm-v-heads 2"
)

for m in "${MODELS[@]}"; do
  name=${m%%|*}
  opts=${m#*|}
  # shellcheck disable=SC2086
  if ! "$GEN" $opts --seed 5 -q -o "$OUT/$name.gguf"; then
    bad "$name: mp-gen $opts"
    continue
  fi
  "$GEN" --check "$OUT/$name.gguf" || bad "$name: --check"
done

# The q4_K_m mix: attn_v / ffn_down_exps / output in q6_K, the rest q4_K;
# norms and router f32; n_vocab taken from the vocab file (32000).
if [ -f "$OUT/moe-q4_K_m-vocab.gguf" ]; then
  chk=$("$GEN" --check "$OUT/moe-q4_K_m-vocab.gguf")
  case "$chk" in *"n_vocab=32000"*) ;; *) bad "--vocab: n_vocab not 32000: $chk" ;; esac
fi

# Deterministic for a seed, different for another seed.
"$GEN" --arch llama-moe --type q4_K --n-embd 256 --n-ff 256 --seed 9 -q -o "$OUT/a.gguf" &&
  "$GEN" --arch llama-moe --type q4_K --n-embd 256 --n-ff 256 --seed 9 -q -o "$OUT/b.gguf" &&
  "$GEN" --arch llama-moe --type q4_K --n-embd 256 --n-ff 256 --seed 10 -q -o "$OUT/c.gguf" ||
  bad "determinism models"
cmp -s "$OUT/a.gguf" "$OUT/b.gguf" || bad "same seed gave different files"
cmp -s "$OUT/a.gguf" "$OUT/c.gguf" && bad "different seeds gave the same file"
rm -f "$OUT/a.gguf" "$OUT/b.gguf" "$OUT/c.gguf"

# A K-quant with 64-wide rows is refused, naming the tensor and the row length.
if msg=$("$GEN" --arch llama --type q4_K --n-embd 64 -q -o "$OUT/bad.gguf" 2>&1); then
  bad "q4_K with n_embd 64 was accepted"
else
  case "$msg" in *"token_embd.weight"*"64"*"256"*) ;; *) bad "unclear row-length message: $msg" ;; esac
fi
[ -e "$OUT/bad.gguf" ] && bad "a refused model left a file behind"
# ... and so is the V2-Lite-like model without --fit-types (attn_output 64, expert down 352)
# shellcheck disable=SC2086
if msg=$("$GEN" $FIT -q -o "$OUT/bad.gguf" 2>&1); then
  bad "a 352-wide q4_K/q6_K row was accepted without --fit-types"
else
  case "$msg" in *"tensor 'blk."*"has rows of"*"256"*) ;; *) bad "unclear row-length message: $msg" ;; esac
fi
[ -e "$OUT/bad.gguf" ] && bad "a refused model left a file behind"

# --check must be able to fail: a NaN in the last f32 value (output.weight's
# last element; 384*64*4 bytes keeps the data end 32-aligned, so no padding).
if [ -f "$OUT/llama-f32.gguf" ]; then
  cp "$OUT/llama-f32.gguf" "$OUT/nan.gguf"
  size=$(stat -c %s "$OUT/nan.gguf")
  printf '\xff\xff\xff\x7f' | dd of="$OUT/nan.gguf" bs=1 seek=$((size - 4)) conv=notrunc status=none
  "$GEN" --check "$OUT/nan.gguf" 2>/dev/null && bad "--check missed a NaN in output.weight"
  rm -f "$OUT/nan.gguf"
fi

# llama.cpp, when a built one is around.
# (tests/helpers/parity.sh: $MP_PEER, build/peer/llamacpp, ../shared/peers/llamacpp)
LL=""
. "$SRC/tests/helpers/parity.sh" && PEER=$(mp_find_peer) && LL="$PEER/build/llama_logits"
if [ -z "$LL" ]; then
  echo "note: no built llama.cpp found (set MP_PEER, or run tools/test.sh); skipped the llama.cpp loads"
else
  for m in "${MODELS[@]}"; do
    name=${m%%|*}
    f="$OUT/$name.gguf"
    [ -f "$f" ] || continue
    if ! log=$("$LL" -m "$f" --ids 1,300,301 -n 1 -t 1 2>&1); then
      bad "$name: llama.cpp failed: $(echo "$log" | tail -3)"
      continue
    fi
    # rms of the last logits must be finite and of order 1-10.
    rms=$(echo "$log" | sed -n 's/^last_logits_mean: .* rms: \(.*\)$/\1/p')
    if ! awk -v r="$rms" 'BEGIN { exit !(r != "" && r + 0 == r && r > 0.1 && r < 100) }'; then
      bad "$name: llama.cpp logits rms '$rms'"
    else
      echo "$name: llama.cpp ok, logits rms $rms"
    fi
  done
fi

if [ "$fail" -ne 0 ]; then
  echo "$fail failure(s)"
  exit 1
fi
echo "test_gen: ok"
exit 0
