#!/usr/bin/env bash
# The README's demo command: installs the missing Debian packages (tools/install_deps.sh,
# nothing when all are there), builds, and runs the committed trained demo model
# (models/demo-stdlib-moe.gguf: a 6-layer, 8-expert top-2 byte-level MoE trained on
# Python's standard library, see docs/demo-model.md) on a Python prompt under a memory
# budget whose expert cache holds well under half of the model's expert bytes, so the
# experts stream from disk while the text appears. Then the plan line, hit rate, MB per
# token and prefetch lines that `moepager run` prints, and the per-layer table.
#   tools/demo.sh                        the demo
#   tools/demo.sh [moepager run options] the demo model with these options instead
# MP_DEMO_NO_BUILD=1 skips the install and the build and runs $MP_BUILD/moepager (the
# tests use it: tests/test_demo_model.sh runs exactly this script).
set -euo pipefail
cd "$(dirname "$0")/.."
B=${MP_BUILD:-build}
if [ "${MP_DEMO_NO_BUILD:-0}" != 1 ]; then
    tools/install_deps.sh
    cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build build -j"$(nproc 2>/dev/null || echo 2)"
    B=build
fi
M=models/demo-stdlib-moe.gguf
# --mem 34M covers the whole process: ~24 MiB fixed overhead, 1.5 MiB of KV cache at
# -c 512, scratch, the 0.5 MiB of non-expert weights, and an expert cache of about 2 MiB
# of the model's 4.8 MiB of expert bytes (3 of 8 experts per layer). Greedy, so the
# output is the same on every run.
[ $# -gt 0 ] || set -- -p "def fibonacci(n):" -n 110 --temp 0.7 --seed 3 --mem 34M -c 512 --layer-stats
exec "$B/moepager" run -m "$M" "$@"
