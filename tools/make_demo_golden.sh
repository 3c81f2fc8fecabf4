#!/usr/bin/env bash
# Writes the demo model's golden logits with the llama.cpp peer (tests/test_demo_golden.sh
# checks the engine against them where no peer is built):
#   tests/golden/demo-stdlib-moe.f32   last-position logits (258 little-endian f32) of
#                                      BOS + the first 200 bytes of the held-out file
#   tests/golden/demo-stdlib-moe.txt   the model's sha256, the ids, llama.cpp's 32 greedy
#                                      tokens, and the peer's version and CPU flags
# Rerun whenever models/demo-stdlib-moe.gguf changes. Usage: MP_PEER=DIR tools/make_demo_golden.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. tests/helpers/parity.sh
PEER=$(MP_BUILD=build MP_SRC=. mp_find_peer) || { echo "make_demo_golden: no built llama.cpp peer (set MP_PEER)" >&2; exit 1; }
M=models/demo-stdlib-moe.gguf
ids="256$(head -c 200 tests/data/demo/heldout-sched.py | od -An -v -tu1 | tr -s ' \n' ',' | sed 's/,$//')"
out=$("$PEER/build/llama_logits" -m "$M" --ids "$ids" -n "$MP_PARITY_NGEN" -t 2 --no-repack \
      --dump tests/golden/demo-stdlib-moe.f32 2>&1)
{
    echo "# Golden logits of models/demo-stdlib-moe.gguf written by tools/make_demo_golden.sh."
    echo "# llama_logits -t 2 --no-repack; $(echo "$out" | grep -m1 '^llama_commit:')"
    echo "$out" | grep -o 'libggml-cpu-[a-z0-9_]*\.so' | head -1 | sed 's/^/# cpu backend: /'
    echo "# cpu flags: $(mp_cpu_simd_flags)"
    echo "sha256 $(sha256sum "$M" | cut -d' ' -f1)"
    echo "ids $ids"
    echo "greedy $(echo "$out" | sed -n 's/^gen_ids: //p')"
} > tests/golden/demo-stdlib-moe.txt
cat tests/golden/demo-stdlib-moe.txt
