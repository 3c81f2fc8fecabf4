#!/usr/bin/env bash
# The README's demo command: installs the missing Debian packages (tools/install_deps.sh,
# nothing when all are there), builds, and runs the demo model the build generates
# (random weights, a real 32k SentencePiece vocabulary, so the text is gibberish).
#   tools/demo.sh [moepager run options]    default: -p "Once upon a time" -n 32
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install_deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc 2>/dev/null || echo 2)"
[ $# -gt 0 ] || set -- -p "Once upon a time" -n 32
exec ./build/moepager run "$@"
