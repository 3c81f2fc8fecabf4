#!/usr/bin/env bash
# Writes the golden logits in tests/golden/ with the llama.cpp peer, so that
# tests/test_parity_golden.sh keeps checking the engine against llama.cpp where the
# peer cannot be built (no npm registry).
#
#   tools/make_golden.sh [--build DIR] [--peer DIR] [--out DIR] [--check]
#
# For every parity model (tests/helpers/parity.sh: 4 architectures x 8 weight types, made
# by DIR/mp-gen with seed 11, ~0.3-15 MB each, not committed) it runs
# `llama_logits --ids <64-token prompt> -n 32 -t 2 --no-repack --dump` and keeps
#   tests/golden/<arch>-<type>.f32  the logits of the last prompt token, raw little-endian
#                                   f32 (n_vocab 384 -> 1536 bytes; 32 files, 48 KiB)
#   tests/golden/MANIFEST           one line per model: arch, type, the sha256 of the model
#                                   file (mp-gen is deterministic for a seed, so the test
#                                   regenerates the model and checks it is the same file),
#                                   and llama.cpp's 32 greedy token ids
# and a header naming the peer (versions, commit, the CPU backend ggml picked) and this
# CPU's SIMD flags (the test expects bit-identical logits only on a CPU with the same).
# --check writes nothing: it compares fresh peer output with the committed files and
# exits 1 on any difference (run it after changing mp-gen or the peer).
# Defaults: --build build, --peer as the tests find it (tests/helpers/parity.sh),
# --out tests/golden.
set -uo pipefail
cd "$(dirname "$0")/.."
SRC=$(pwd)
B=build OUT=tests/golden PEER= check=0
while [ $# -gt 0 ]; do
  case "$1" in
    --build) B=$2; shift 2 ;;
    --peer) PEER=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --check) check=1; shift ;;
    -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "make_golden: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
export MP_BUILD=$B MP_SRC=$SRC
[ -n "$PEER" ] && export MP_PEER=$PEER
. tests/helpers/parity.sh || exit 1
PEER=$(mp_find_peer) || { echo "make_golden: no built llama.cpp peer (--peer DIR, or run tools/test.sh)" >&2; exit 1; }
LL="$PEER/build/llama_logits"
[ -x "$B/mp-gen" ] || { echo "make_golden: $B/mp-gen not built" >&2; exit 1; }

T=$(mktemp -d "${TMPDIR:-/tmp}/mp-golden.XXXXXX")
trap 'rm -rf "$T"' EXIT
mkdir -p "$T/out"
first=1
{
  echo "# Golden logits written by tools/make_golden.sh with the llama.cpp peer; see that script."
  echo "# prompt ids: $MP_PARITY_IDS"
  echo "# greedy tokens: $MP_PARITY_NGEN; llama_logits -t 2 --no-repack"
} >"$T/out/MANIFEST"
fail=0
for arch in $MP_PARITY_ARCHS; do
  for type in $MP_PARITY_TYPES_ALL; do
    m="$T/$arch-$type.gguf"
    mp_parity_gen "$B/mp-gen" "$arch" "$type" "$m" || { echo "make_golden: mp-gen $arch $type failed" >&2; exit 1; }
    lc=$("$LL" -m "$m" --ids "$MP_PARITY_IDS" -n "$MP_PARITY_NGEN" -t 2 --no-repack --dump "$T/out/$arch-$type.f32" 2>&1) ||
      { echo "make_golden: llama_logits $arch $type failed:" >&2; echo "$lc" | tail -5 >&2; exit 1; }
    if [ $first = 1 ]; then
      # the peer's identity, from the first run's log (the backend line names the ISA variant)
      echo "$lc" | grep -E '^(llama_version|ggml_version|llama_commit|llama_compiler):' | sed 's/^/# /' >>"$T/out/MANIFEST"
      echo "$lc" | grep -o 'libggml-cpu-[a-z0-9_]*\.so' | head -1 | sed 's/^/# cpu backend: /' >>"$T/out/MANIFEST"
      echo "$lc" | grep '^device\[0\]' | sed 's/^/# /' >>"$T/out/MANIFEST"
      echo "# cpu flags: $(mp_cpu_simd_flags)" >>"$T/out/MANIFEST"
      echo "# arch type model_sha256 gen_ids" >>"$T/out/MANIFEST"
      first=0
    fi
    ids=$(echo "$lc" | sed -n 's/^gen_ids: //p')
    [ -n "$ids" ] || { echo "make_golden: no gen_ids from llama_logits $arch $type" >&2; exit 1; }
    echo "$arch $type $(sha256sum "$m" | cut -d' ' -f1) $ids" >>"$T/out/MANIFEST"
    rm -f "$m"
    if [ $check = 1 ]; then
      if cmp -s "$T/out/$arch-$type.f32" "$OUT/$arch-$type.f32"; then echo "same  $arch $type"; else echo "DIFF  $arch $type"; fail=1; fi
    fi
  done
done
if [ $check = 1 ]; then
  # the model hashes and token ids (the header may name another machine's backend)
  diff <(grep -v '^#' "$OUT/MANIFEST") <(grep -v '^#' "$T/out/MANIFEST") || fail=1
  [ $fail = 0 ] && echo "make_golden --check: $OUT matches the peer"
  exit $fail
fi
mkdir -p "$OUT"
cp "$T/out/"* "$OUT/"
echo "make_golden: wrote $(ls "$T/out" | wc -l) files, $(cat "$OUT"/* | wc -c) bytes, to $OUT (peer $PEER)"
