#!/usr/bin/env bash
# Builds and runs the libFuzzer harness for the GGUF reader.
#
#   tools/fuzz_gguf.sh [seconds] [extra libFuzzer flags...]    (default 600 s)
#
# Compiles src/gguf/*.c, src/common/*.c and tests/fuzz/fuzz_gguf.c directly
# with Debian's clang (-fsanitize=fuzzer,address,undefined) into
# build-fuzz/fuzz_gguf, then fuzzes at the lowest priority with one job,
# starting from tests/fuzz/corpus_gguf (read-only; new inputs go to
# build-fuzz/corpus_gguf). Crash reproducers land in build-fuzz/; copy them to
# tests/fuzz/regress_gguf/ so that test_gguf_fuzz replays them in ctest.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${MP_FUZZ_OUT:-$root/build-fuzz}
secs=${1:-600}
shift || true
cc=${CC_FUZZ:-clang}
mkdir -p "$out/corpus_gguf"

srcs=("$root"/src/gguf/*.c "$root"/src/common/err.c "$root"/src/common/types.c)
"$cc" -g -O1 -std=gnu11 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -fno-omit-frame-pointer -I"$root/include" -I"$root/src" -I"$root/tests" \
    "${srcs[@]}" "$root/tests/fuzz/fuzz_gguf.c" -o "$out/fuzz_gguf"

cd "$out"
exec nice -n 19 ./fuzz_gguf -jobs=1 -workers=1 -max_total_time="$secs" -max_len=16384 -rss_limit_mb=1024 \
    -timeout=5 -print_final_stats=1 -artifact_prefix="$out/" "$@" \
    "$out/corpus_gguf" "$root/tests/fuzz/corpus_gguf"
