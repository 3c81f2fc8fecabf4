#!/usr/bin/env bash
# Engine speed against llama.cpp's llama-bench on the same file, whole model
# in RAM, same thread count. Usage:
#   bench/compare_llamacpp.sh MODEL.gguf [threads=2] [pp=512] [tg=128] [reps=3]
# Needs a built peer: $MP_PEER (default ../shared/peers/llamacpp) with
# build/llama-bench (its `make tools`), and this project's build/bench_engine.
set -euo pipefail
model=$1; t=${2:-2}; pp=${3:-512}; tg=${4:-128}; r=${5:-3}
here=$(cd "$(dirname "$0")/.." && pwd)
peer=${MP_PEER:-$here/../shared/peers/llamacpp}
build=${MP_BUILD:-$here/build}
echo "== moepager ($model, $t threads)"
"$build/bench_engine" -m "$model" -p "$pp" -n "$tg" -r "$r" -t "$t"
echo "== llama.cpp llama-bench"
"$peer/build/llama-bench" -m "$model" -p "$pp" -n "$tg" -r "$r" -t "$t" -o md 2>/dev/null | grep -E "pp|tg|model"
