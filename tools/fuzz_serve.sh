#!/usr/bin/env bash
# Builds and runs the libFuzzer harness for moepager serve's request parser
# (src/cli/serve_request.c: the JSON bodies of /v1/chat/completions and
# /v1/completions, the error replies, the UTF-8 cleaning of streamed text).
#
#   tools/fuzz_serve.sh [seconds] [extra libFuzzer flags...]    (default 600 s)
#
# Compiles src/cli/serve_request.c and tests/fuzz/fuzz_serve_request.c with
# Debian's clang (-fsanitize=fuzzer,address,undefined) against jansson into
# build-fuzz/fuzz_serve_request, then fuzzes at the lowest priority with one
# job, starting from tests/fuzz/corpus_serve (read-only; new inputs go to
# build-fuzz/corpus_serve). Crash reproducers land in build-fuzz/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${MP_FUZZ_OUT:-$root/build-fuzz}
secs=${1:-600}
shift || true
cc=${CC_FUZZ:-clang}
mkdir -p "$out/corpus_serve"

# shellcheck disable=SC2046
"$cc" -g -O1 -std=gnu11 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -fno-omit-frame-pointer -I"$root/include" $(pkg-config --cflags jansson) \
    "$root/src/cli/serve_request.c" "$root/tests/fuzz/fuzz_serve_request.c" \
    $(pkg-config --libs jansson) -lm -o "$out/fuzz_serve_request"

cd "$out"
exec nice -n 19 ./fuzz_serve_request -jobs=1 -workers=1 -max_total_time="$secs" -max_len=8192 -rss_limit_mb=1024 \
    -timeout=5 -print_final_stats=1 -artifact_prefix="$out/" "$@" \
    "$out/corpus_serve" "$root/tests/fuzz/corpus_serve"
